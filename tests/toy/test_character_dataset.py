"""The toy character dataset: deterministic, and each kind of bad frame is measurably what it claims."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from orchestrator.toy import FRAME_KINDS, ToyDatasetSpec, generate_toy_dataset, load_toy_dataset

SMALL = ToyDatasetSpec(good=6, black=1, blurred=1, near_duplicates=2, other_character=2, corrupt=1,
                       references=2, size=96, seed=7)


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory):
    return generate_toy_dataset(tmp_path_factory.mktemp("toy"), SMALL)


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


def _sharpness(path: Path) -> float:
    """Variance of the 4-neighbour Laplacian, the usual blur measure."""
    gray = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    laplacian = gray[1:-1, :-2] + gray[1:-1, 2:] + gray[:-2, 1:-1] + gray[2:, 1:-1] - 4 * gray[1:-1, 1:-1]
    return float(laplacian.var())


def test_counts_and_names_follow_the_spec(toy) -> None:
    counts = {kind: len(toy.names_of(kind)) for kind in FRAME_KINDS}
    assert counts == {"good": 6, "black": 1, "blurred": 1, "near_duplicate": 2, "other_character": 2, "corrupt": 1}
    assert sorted(p.name for p in toy.frames_dir.iterdir()) == [f"frame_{i:04d}.png" for i in range(1, 14)]
    assert len(list(toy.references_dir.glob("*.png"))) == 2


def test_same_seed_same_bytes_other_seed_other_frames(toy, tmp_path: Path) -> None:
    again = generate_toy_dataset(tmp_path / "again", SMALL)
    for frame in toy.frames:
        assert (toy.frames_dir / frame.name).read_bytes() == (again.frames_dir / frame.name).read_bytes()
    other = generate_toy_dataset(tmp_path / "other", ToyDatasetSpec(**{**SMALL.__dict__, "seed": 8}))
    assert [f.kind for f in other.frames] != [f.kind for f in toy.frames] or any(
        (toy.frames_dir / f.name).read_bytes() != (other.frames_dir / f.name).read_bytes() for f in toy.frames
    )


def test_manifest_reads_back_to_the_same_frames(toy) -> None:
    assert load_toy_dataset(toy.root).frames == toy.frames
    manifest = json.loads((toy.root / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["spec"]["seed"] == 7


def test_black_frames_are_dark_and_good_frames_are_not(toy) -> None:
    for name in toy.names_of("black"):
        assert _pixels(toy.frames_dir / name).mean() < 5
    for name in toy.names_of("good"):
        assert _pixels(toy.frames_dir / name).mean() > 60


def test_blurred_frames_are_far_less_sharp_than_any_good_frame(toy) -> None:
    least_sharp_good = min(_sharpness(toy.frames_dir / n) for n in toy.names_of("good"))
    for name in toy.names_of("blurred"):
        assert _sharpness(toy.frames_dir / name) < least_sharp_good / 10


def test_near_duplicates_nearly_equal_their_source_and_differ_from_other_frames(toy) -> None:
    good = toy.names_of("good")
    for frame in (f for f in toy.frames if f.kind == "near_duplicate"):
        copy = _pixels(toy.frames_dir / frame.name)
        to_source = np.abs(copy - _pixels(toy.frames_dir / frame.source)).mean()
        to_others = min(np.abs(copy - _pixels(toy.frames_dir / n)).mean() for n in good if n != frame.source)
        assert to_source < to_others / 3


def test_the_corrupt_file_looks_like_a_png_but_does_not_decode(toy) -> None:
    (name,) = toy.names_of("corrupt")
    data = (toy.frames_dir / name).read_bytes()
    assert data.startswith(b"\x89PNG")
    with pytest.raises(OSError):
        Image.open(toy.frames_dir / name).load()


def test_the_other_character_wears_no_blue_stripes(toy) -> None:
    def blue_share(path: Path) -> float:
        r, g, b = np.moveaxis(_pixels(path), -1, 0)
        return float(((b > 150) & (r < 90) & (g < 130)).mean())

    hero = np.mean([blue_share(toy.references_dir / p.name) for p in toy.references_dir.iterdir()])
    for name in toy.names_of("other_character"):
        assert blue_share(toy.frames_dir / name) < hero / 5


def test_bad_spec_is_refused() -> None:
    with pytest.raises(ValueError):
        ToyDatasetSpec(good=1, near_duplicates=2)
