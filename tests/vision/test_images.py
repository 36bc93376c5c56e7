from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from orchestrator.common.hashing import file_sha256
from orchestrator.vision import ImageDecodeError, list_image_files, list_visible_files, open_image_rgb
from orchestrator.vision.synthetic import synthetic_scene


def test_every_awkward_input_kind_opens_or_fails_with_its_reason(bad_inputs):
    folder, expected = bad_inputs
    assert len(expected) >= 10
    for name, reason in expected.items():
        if reason is None:
            image = open_image_rgb(folder / name)
            assert image.mode == "RGB" and image.size == (320, 240), name
        else:
            with pytest.raises(ImageDecodeError) as caught:
                open_image_rgb(folder / name)
            assert caught.value.reason == reason, name
            assert name in str(caught.value)


def test_huge_image_is_refused_with_a_decompression_bomb_reason(bad_inputs):
    folder, _ = bad_inputs
    with pytest.raises(ImageDecodeError, match="decompression-bomb"):
        open_image_rgb(folder / "huge.png")


def test_own_pixel_budget_is_checked_before_decoding(tmp_path):
    synthetic_scene(1, (400, 300)).save(tmp_path / "frame.png")
    with pytest.raises(ImageDecodeError, match=r"400x300 .* exceeds") as caught:
        open_image_rgb(tmp_path / "frame.png", max_pixels=100_000)
    assert caught.value.reason == "too_large"


def test_sixteen_bit_is_scaled_not_clipped(bad_inputs):
    folder, _ = bad_inputs
    from16 = np.asarray(open_image_rgb(folder / "gray16.png").convert("L"), dtype=int)
    from8 = np.asarray(open_image_rgb(folder / "grayscale.png").convert("L"), dtype=int)
    assert np.abs(from16 - from8).max() <= 1


def test_transparent_pixels_become_white(tmp_path):
    image = Image.new("RGBA", (8, 8), (10, 20, 30, 0))
    image.putpixel((0, 0), (10, 20, 30, 255))
    image.save(tmp_path / "cutout.png")
    rgb = open_image_rgb(tmp_path / "cutout.png")
    assert rgb.getpixel((5, 5)) == (255, 255, 255)
    assert rgb.getpixel((0, 0)) == (10, 20, 30)


def test_missing_file_has_its_own_reason(tmp_path):
    with pytest.raises(ImageDecodeError) as caught:
        open_image_rgb(tmp_path / "absent.png")
    assert caught.value.reason == "missing"


def test_opening_never_modifies_the_file(bad_inputs):
    folder, expected = bad_inputs
    before = {name: file_sha256(folder / name) for name in expected}
    for name in expected:
        try:
            open_image_rgb(folder / name)
        except ImageDecodeError:
            pass
    assert before == {name: file_sha256(folder / name) for name in expected}


def test_folder_listing_is_sorted_recursive_and_skips_hidden(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / ".thumbs").mkdir()
    for name in ("b/0002.png", "0001.JPG", ".DS_Store", ".thumbs/x.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in list_visible_files(tmp_path)] == [
        "0001.JPG", "b/0002.png", "notes.txt"]
    assert [p.name for p in list_image_files(tmp_path)] == ["0001.JPG", "0002.png"]
