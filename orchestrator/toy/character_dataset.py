"""The toy "character" dataset: frames as a film extract gives them, plus the truth about each one.

Frames are named ``frame_0001.png``... in shuffled order, so nothing but the pixels tells the curation
stage which ones to reject. ``manifest.json`` records each frame's kind for tests and the quickstart's
summary: ``good``, ``black``, ``blurred``, ``near_duplicate`` (of the frame named in ``source``),
``other_character`` and ``corrupt``. ``references/`` holds clean front views of the hero, the input of
identity matching. Same seed, same bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from orchestrator.common.atomic import atomic_write_bytes, atomic_write_json
from orchestrator.toy.character_drawing import (
    FRONT_POSE,
    HERO,
    STRANGER,
    black_frame,
    blurred,
    draw_frame,
    near_duplicate,
)

MANIFEST_NAME = "manifest.json"
FRAME_KINDS = ("good", "black", "blurred", "near_duplicate", "other_character", "corrupt")


@dataclass(frozen=True)
class ToyDatasetSpec:
    good: int = 24
    black: int = 2
    blurred: int = 2
    near_duplicates: int = 2
    other_character: int = 3
    corrupt: int = 1
    references: int = 3
    size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        if self.good < 1 or self.size < 32:
            raise ValueError("a toy dataset needs at least one good frame and frames of at least 32 px")
        if self.near_duplicates > self.good:
            raise ValueError("near_duplicates copies good frames: it cannot exceed good")


@dataclass(frozen=True)
class ToyFrame:
    name: str
    kind: str
    source: str | None = None  # for a near-duplicate: the frame it repeats


@dataclass(frozen=True)
class ToyDataset:
    root: Path
    frames_dir: Path
    references_dir: Path
    frames: tuple[ToyFrame, ...] = field(default=())

    def names_of(self, kind: str) -> list[str]:
        return [frame.name for frame in self.frames if frame.kind == kind]


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _corrupt_bytes(rng: np.random.Generator, size: int) -> bytes:
    # A PNG cut off mid-stream: the signature says PNG, the decoder fails. Typical of an interrupted copy.
    whole = _png_bytes(Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8), "RGB"))
    return whole[: max(64, len(whole) // 5)]


def plan_frames(spec: ToyDatasetSpec) -> list[tuple[str, int]]:
    """(kind, index-within-kind) for every frame, shuffled deterministically by the seed."""
    counts = {"good": spec.good, "black": spec.black, "blurred": spec.blurred,
              "near_duplicate": spec.near_duplicates, "other_character": spec.other_character,
              "corrupt": spec.corrupt}
    plan = [(kind, index) for kind in FRAME_KINDS for index in range(counts[kind])]
    order = np.random.default_rng(spec.seed).permutation(len(plan))
    return [plan[i] for i in order]


def generate_toy_dataset(out_dir: str | Path, spec: ToyDatasetSpec | None = None) -> ToyDataset:
    """Draw the frames and references into ``out_dir/frames`` and ``out_dir/references``; write the manifest."""
    spec = spec or ToyDatasetSpec()
    root = Path(out_dir)
    frames_dir, references_dir = root / "frames", root / "references"
    plan = plan_frames(spec)
    names = {item: f"frame_{position + 1:04d}.png" for position, item in enumerate(plan)}
    rng = np.random.default_rng(spec.seed + 1)
    good_images: dict[int, Image.Image] = {}
    for index in range(spec.good):
        good_images[index] = draw_frame(rng, spec.size, HERO)
    frames: list[ToyFrame] = []
    for kind, index in plan:
        name = names[(kind, index)]
        source = None
        if kind == "good":
            data = _png_bytes(good_images[index])
        elif kind == "black":
            data = _png_bytes(black_frame(rng, spec.size))
        elif kind == "blurred":
            data = _png_bytes(blurred(draw_frame(rng, spec.size, HERO), rng))
        elif kind == "near_duplicate":
            source = names[("good", index)]
            data = _png_bytes(near_duplicate(good_images[index], rng))
        elif kind == "other_character":
            data = _png_bytes(draw_frame(rng, spec.size, STRANGER))
        else:
            data = _corrupt_bytes(rng, spec.size)
        atomic_write_bytes(frames_dir / name, data)
        frames.append(ToyFrame(name=name, kind=kind, source=source))
    _draw_references(references_dir, spec.references, spec.size, rng)
    frames.sort(key=lambda frame: frame.name)
    atomic_write_json(root / MANIFEST_NAME, {
        "spec": spec.__dict__,
        "frames": [{"name": f.name, "kind": f.kind, "source": f.source} for f in frames],
    })
    return ToyDataset(root=root, frames_dir=frames_dir, references_dir=references_dir, frames=tuple(frames))


def _draw_references(folder: Path, count: int, size: int, rng: np.random.Generator) -> None:
    backgrounds = [(235, 235, 235), (200, 220, 240), (240, 225, 200), (215, 240, 215)]
    for index in range(count):
        reference = draw_frame(rng, size, HERO, FRONT_POSE, plain_background=backgrounds[index % 4])
        atomic_write_bytes(folder / f"reference_{index + 1:02d}.png", _png_bytes(reference))


def generate_toy_references(folder: str | Path, *, count: int = 3, size: int = 256, seed: int = 0) -> Path:
    """Only the hero's clean front views (``reference_01.png``...): the identity input of a toy film."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _draw_references(folder, count, size, np.random.default_rng(seed + 1))
    return folder


def load_toy_dataset(root: str | Path) -> ToyDataset:
    """Read back a dataset written by :func:`generate_toy_dataset` from its manifest."""
    import json

    root = Path(root)
    manifest = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    frames = tuple(ToyFrame(name=f["name"], kind=f["kind"], source=f.get("source")) for f in manifest["frames"])
    return ToyDataset(root=root, frames_dir=root / "frames", references_dir=root / "references", frames=frames)
