"""A run whose epochs are sample sets of known quality, drawn with the toy character generator.

epoch 0 (``sample_at_first``, the floor): the base model's generic character; then
1 (d) noise, 2 (e) generic base-model-like images, 3 (c) another character, 4 (a) exact training
frames, 5 (b) the hero in poses and views the training set never showed (smaller, farther away,
arms raised). The truth: 5 is best, 4 memorised, 1 worst.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from orchestrator.toy.character_drawing import FRONT_POSE, HERO, STRANGER, Pose, draw_frame, random_pose
from tests.evaluate.character_encoder import GENERIC

PROMPTS = [f"hero, {view}, {mood} --w 128 --h 128 --d {100 + i}" for i, (view, mood) in enumerate([
    ("full body, from the front", "smiling"), ("from the side", "laughing"), ("far away on a beach", "waving"),
    ("from above", "surprised"), ("jumping", "happy"), ("arms raised", "cheering"), ("sitting", "calm"),
    ("from below", "angry"), ("running", "excited"), ("looking back", "shy"), ("small in the frame", "sad"),
    ("crouching", "curious")])]
BACKGROUNDS = [(170, 200, 230), (200, 230, 200), (150, 150, 170), (190, 180, 220)]
SIZE = 128
SETS = {1: "noise", 2: "generic", 3: "other character", 4: "training frames", 5: "unseen views"}


@dataclass
class RankingRun:
    run_dir: Path
    references: Path
    train_images: Path


def unseen_pose(rng: np.random.Generator) -> Pose:
    """A pose outside every range ``random_pose`` draws training frames from: far away and arms up."""
    return Pose(center_x=float(rng.uniform(0.2, 0.8)), center_y=float(rng.uniform(0.35, 0.7)),
                scale=float(rng.uniform(0.3, 0.42)), facing=float(rng.choice([-1.0, 1.0])),
                arm_left=float(rng.uniform(155, 180)), arm_right=float(rng.uniform(155, 180)),
                leg_left=float(rng.uniform(40, 60)), leg_right=float(rng.uniform(40, 60)))


def _plain(rng: np.random.Generator) -> tuple[int, int, int]:
    return BACKGROUNDS[int(rng.integers(0, len(BACKGROUNDS)))]


def build_ranking_run(root: Path, *, sets: dict[int, str] | None = None) -> RankingRun:
    sets = sets or SETS
    rng = np.random.default_rng(7)
    run_dir, references, train = root / "run", root / "references", root / "dataset" / "10_hero"
    for folder in (run_dir / "sample", run_dir / "config", references, train):
        folder.mkdir(parents=True, exist_ok=True)
    for i in range(24):
        draw_frame(rng, SIZE, HERO, random_pose(rng), plain_background=_plain(rng)).save(train / f"frame_{i:02d}.png")
    for i, facing in enumerate((-0.6, -0.2, 0.2, 0.6)):
        pose = Pose(**{**FRONT_POSE.__dict__, "facing": facing})
        draw_frame(rng, SIZE, HERO, pose, plain_background=BACKGROUNDS[i]).save(references / f"ref_{i}.png")
    prompt_file = root / "prompts.txt"
    prompt_file.write_text("\n".join(PROMPTS) + "\n")
    (run_dir / "config" / "training.toml").write_text(f'output_name = "hero"\nsample_prompts = "{prompt_file}"\n')
    (run_dir / "config" / "dataset.toml").write_text(f'[[datasets]]\n[[datasets.subsets]]\nimage_dir = "{train}"\n')
    training_frames = sorted(train.glob("*.png"))
    last = max(sets)
    for epoch, kind in [(0, "generic"), *sorted(sets.items())]:
        for index in range(len(PROMPTS)):
            target = run_dir / "sample" / f"hero_e{epoch:06d}_{index:02d}_20260101120000_{100 + index}.png"
            if kind == "training frames":
                shutil.copy(training_frames[index], target)
                continue
            _draw(kind, rng).save(target)
        if epoch:
            name = "hero.safetensors" if epoch == last else f"hero-{epoch:06d}.safetensors"
            (run_dir / name).write_bytes(b"weights")
    losses = [{"step": s, "epoch": 1 + (s - 1) // 4, "avr_loss": 0.2 - 0.001 * s} for s in range(1, 4 * last + 1)]
    (run_dir / "run.json").write_text(json.dumps({"status": "succeeded", "output_name": "hero",
                                                  "summary": {"epochs": last}, "losses": losses}))
    return RankingRun(run_dir, references, train)


def _draw(kind: str, rng: np.random.Generator) -> Image.Image:
    if kind == "noise":
        return Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8), "RGB")
    if kind == "generic":
        return draw_frame(rng, SIZE, GENERIC, random_pose(rng), plain_background=_plain(rng))
    if kind == "other character":
        return draw_frame(rng, SIZE, STRANGER, random_pose(rng), plain_background=_plain(rng))
    if kind == "unseen views":
        return draw_frame(rng, SIZE, HERO, unseen_pose(rng), plain_background=_plain(rng))
    raise ValueError(kind)
