from __future__ import annotations

import numpy as np

from orchestrator.dataset.config import QualityThresholds
from orchestrator.dataset.dedup import DedupCandidate, find_near_duplicates, hash_to_int
from orchestrator.dataset.quality import quality_problems
from orchestrator.vision import ImageMeasures

GOOD = ImageMeasures(width=1920, height=1080, mean_luminance=0.5, luminance_std=0.2, dark_clipped_fraction=0.01,
                     bright_clipped_fraction=0.01, laplacian_variance=300.0)


def _codes(**changes) -> list[str]:
    from dataclasses import replace

    return [p.code for p in quality_problems(replace(GOOD, **changes), QualityThresholds())]


def test_good_frame_has_no_problems():
    assert quality_problems(GOOD, QualityThresholds()) == []


def test_each_threshold_reports_its_own_code_value_and_limit():
    assert _codes(height=200) == ["too_small"]
    assert _codes(laplacian_variance=3.0) == ["blurry"]
    assert _codes(mean_luminance=0.02) == ["too_dark"]
    assert _codes(mean_luminance=0.97) == ["too_bright"]
    assert _codes(dark_clipped_fraction=0.8) == ["crushed_blacks"]
    assert _codes(bright_clipped_fraction=0.8) == ["blown_highlights"]
    problem = quality_problems(GOOD.__class__(**{**GOOD.to_dict(), "mean_luminance": 0.02}), QualityThresholds())[0]
    assert (problem.value, problem.limit) == (0.02, 0.08)
    assert "0.020 < 0.08" in problem.message


def test_blank_frame_is_blank_not_also_blurry():
    assert _codes(luminance_std=0.0, laplacian_variance=0.0, mean_luminance=0.0, dark_clipped_fraction=1.0) == [
        "blank", "too_dark", "crushed_blacks"]


def test_sharpest_of_a_group_is_kept_and_others_name_it():
    candidates = [DedupCandidate("a", 0b0000, 10.0), DedupCandidate("b", 0b0001, 50.0),
                  DedupCandidate("c", 0b0011, 20.0), DedupCandidate("far", 2**40 - 1, 1.0)]
    dropped = find_near_duplicates(candidates, max_distance=2)
    assert set(dropped) == {"a", "c"}
    assert (dropped["a"].kept, dropped["a"].distance) == ("b", 1)
    assert (dropped["c"].kept, dropped["c"].distance) == ("b", 1)


def test_a_slow_pan_does_not_chain_distant_frames_together():
    five, ten = 0b11111, 0b1111111111  # a-b and b-c differ by 5 bits, a-c by 10
    candidates = [DedupCandidate("a", 0, 3.0), DedupCandidate("b", five, 2.0), DedupCandidate("c", ten, 1.0)]
    assert set(find_near_duplicates(candidates, max_distance=6)) == {"b"}


def test_equal_sharpness_keeps_the_earlier_frame():
    dropped = find_near_duplicates([DedupCandidate(1, 7, 5.0), DedupCandidate(2, 7, 5.0)], max_distance=0)
    assert dropped[2].kept == 1


def test_hash_bits_become_an_integer_row_major():
    assert hash_to_int(np.array([[True, False], [False, True]])) == 0b1001
    assert hash_to_int(np.ones((8, 8), dtype=bool)) == 2**64 - 1
