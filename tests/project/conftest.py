"""A project's inputs, built in seconds: a short real video, two reference stills, a profile."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "configs" / "characters" / "luca.yaml"


def write_video(path: Path, frames: int = 12) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (64, 48))
    for index in range(frames):
        writer.write(np.full((48, 64, 3), 10 * index, dtype=np.uint8))
    writer.release()
    return path


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "inputs"
    references = folder / "refs"
    references.mkdir(parents=True)
    for index in range(2):
        Image.new("RGB", (32, 32), (40 * index, 80, 120)).save(references / f"ref{index}.png")
    profile = folder / "luca.yaml"
    shutil.copy(PROFILE, profile)
    return {"film": write_video(folder / "luca.avi"), "references": references, "profile": profile}
