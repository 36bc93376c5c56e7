from __future__ import annotations

import pytest
from PIL import Image

from orchestrator.vision import measure_image
from orchestrator.vision.synthetic import blurred, synthetic_scene


def test_blank_frame_has_no_spread_and_no_edges():
    measures = measure_image(Image.new("RGB", (640, 360), (90, 90, 90)))
    assert measures.luminance_std == 0.0
    assert measures.laplacian_variance == 0.0
    assert measures.mean_luminance == pytest.approx(90 / 255, abs=1e-3)
    assert (measures.width, measures.height) == (640, 360)


def test_black_and_white_frames_are_fully_clipped():
    black = measure_image(Image.new("RGB", (64, 64), (0, 0, 0)))
    white = measure_image(Image.new("RGB", (64, 64), (255, 255, 255)))
    assert (black.dark_clipped_fraction, black.bright_clipped_fraction) == (1.0, 0.0)
    assert (white.dark_clipped_fraction, white.bright_clipped_fraction) == (0.0, 1.0)


def test_blur_lowers_laplacian_variance_by_a_lot():
    scene = synthetic_scene(3, (640, 480))
    sharp = measure_image(scene).laplacian_variance
    soft = measure_image(blurred(scene, 4)).laplacian_variance
    assert soft < sharp / 10


def test_measures_compare_across_resolutions_but_report_the_real_size():
    scene = synthetic_scene(5, (1024, 768))
    large = measure_image(scene.resize((2048, 1536), Image.Resampling.NEAREST))
    small = measure_image(scene)
    assert (large.width, large.height) == (2048, 1536)
    assert large.mean_luminance == pytest.approx(small.mean_luminance, abs=0.01)
    assert large.laplacian_variance == pytest.approx(small.laplacian_variance, rel=0.1)
