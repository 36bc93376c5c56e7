from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from orchestrator.vision.synthetic import blurred, synthetic_scene, write_bad_inputs  # noqa: E402
from tests.crop.conftest import film_frames  # noqa: E402, F401 (a toy film, extracted: crops for masks and review)

SIZE = (640, 480)
CHARACTER_SEEDS = (100, 101, 102, 103)
OTHER_SEEDS = (200, 201, 202, 203, 204, 205)


@pytest.fixture(scope="session")
def tiny_encoder():
    from orchestrator.vision import load_clip

    # load_clip quiets open_clip's root-logger narration itself and restores the level after.
    return load_clip("tiny-clip", "random")


@dataclass
class FrameSet:
    frames: Path
    references: Path
    bad: dict[str, str | None]  # bad/<name> -> expected decode reason (None: opens fine)


def build_frame_set(root: Path) -> FrameSet:
    """References = 4 scenes; frames = a resized copy and a sharper JPEG copy of each (near-duplicates,
    so the identity of each pair is known), 6 unrelated scenes, 3 quality failures and every bad kind."""
    frames, references = root / "frames", root / "refs"
    frames.mkdir(parents=True)
    references.mkdir()
    for index, seed in enumerate(CHARACTER_SEEDS):
        scene = synthetic_scene(seed, SIZE)
        scene.save(references / f"ref_{index}.png")
        scene.resize((600, 450)).save(frames / f"{index:04d}_char.png")  # resizing softens: less sharp
        scene.save(frames / f"{index:04d}_char_sharp.jpg", quality=95)
    for index, seed in enumerate(OTHER_SEEDS):
        synthetic_scene(seed, SIZE).save(frames / f"{10 + index:04d}_other.png")
    blurred(synthetic_scene(300, SIZE), 8).save(frames / "0020_blurred.png")
    Image.new("RGB", SIZE, (0, 0, 0)).save(frames / "0021_black.png")
    synthetic_scene(301, (120, 90)).save(frames / "0022_tiny.png")
    bad = write_bad_inputs(frames / "bad")
    return FrameSet(frames, references, bad)


@pytest.fixture(scope="session")
def _frame_set_template(tmp_path_factory) -> FrameSet:
    return build_frame_set(tmp_path_factory.mktemp("template"))


@pytest.fixture
def frame_set(_frame_set_template, tmp_path) -> FrameSet:
    """A private copy per test (tests may add files to it)."""
    for name in ("frames", "refs"):
        shutil.copytree(_frame_set_template.frames.parent / name, tmp_path / "input" / name)
    return FrameSet(tmp_path / "input" / "frames", tmp_path / "input" / "refs", dict(_frame_set_template.bad))
