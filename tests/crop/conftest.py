"""A toy film, extracted once; a detector that knows where the characters are; a colour embedder whose
answer is known (the hero's palette against the stranger's)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from orchestrator.crop import Box, Detection
from orchestrator.extract import ExtractConfig, extract_videos, read_manifest
from orchestrator.toy import ToyDatasetSpec, generate_toy_dataset, generate_toy_film
from orchestrator.toy.character_drawing import HERO, STRANGER
from orchestrator.vision import open_image_rgb

# Colours no background of the toy film uses (the hero's blue shirt would match the sky).
PALETTE = [HERO.hair, HERO.shorts, HERO.skin, STRANGER.shirt, STRANGER.hair, STRANGER.skin]


def palette_embed(images: list[Image.Image]) -> np.ndarray:
    """Which characters' colours a picture holds: a known-answer stand-in for CLIP."""
    rows = []
    for image in images:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32).reshape(-1, 3)
        row = [float((np.abs(pixels - np.array(color)).max(axis=1) < 20).mean()) for color in PALETTE]
        rows.append(np.asarray([*row, 1e-3]))  # the last axis: "none of them", so a background box is not alike
    matrix = np.asarray(rows, dtype=np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


class TruthDetector:
    """Returns the drawn characters' true boxes (and a box of background), keyed by the frame's pixels."""

    identity = "truth"

    def __init__(self, frames: dict[bytes, dict[str, list[int]]], *, duplicate_hero: bool = False) -> None:
        self.frames, self.duplicate_hero, self.calls = frames, duplicate_hero, 0

    def detect(self, images: list[Image.Image], queries: list[str]) -> list[list[Detection]]:
        self.calls += 1
        results = []
        for image in images:
            boxes = self.frames[np.asarray(image).tobytes()]
            found = [Detection(Box(*boxes[who]), 0.9 if who == "stranger" else 0.6, queries[0]) for who in boxes]
            found.append(Detection(Box(0, 0, 60, 40), 0.95, queries[0]))  # sky: a confident wrong box
            if self.duplicate_hero and "hero" in boxes:
                x0, y0, x1, y1 = boxes["hero"]
                found.append(Detection(Box(x0 + 4, y0 + 4, x1 - 4, y1), 0.5, queries[-1]))
            results.append(found)
        return results


@pytest.fixture(scope="session")
def film_frames(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("film")
    film = generate_toy_film(root / "film")
    frames_dir = root / "frames"
    extract_videos([film.video], frames_dir, ExtractConfig(per_shot=2), progress=False)
    truth = json.loads(Path(film.truth).read_text())
    by_pixels = {}
    lines = read_manifest(frames_dir)
    for line in lines:
        by_pixels[np.asarray(open_image_rgb(frames_dir / line["file"])).tobytes()] = truth["boxes"][str(line["frame"])]
    references = generate_toy_dataset(root / "toy", ToyDatasetSpec(good=1, black=0, blurred=0, near_duplicates=0,
                                                                   other_character=0, corrupt=0)).references_dir
    return {"frames_dir": frames_dir, "references": references, "truth": truth, "lines": lines,
            "by_pixels": by_pixels}
