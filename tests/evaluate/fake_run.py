"""A real run folder as sd-scripts and the runner leave it, built from synthetic images."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from orchestrator.vision.synthetic import synthetic_scene

PROMPTS = """# validation prompts
luca, a boy, close-up portrait, smiling --n blurry --w 64 --h 64 --d 11
luca, a boy, full body, running on a beach --n blurry --w 64 --h 64 --d 12
luca, a boy, from above, sitting on a boat --w 64 --h 64 --d 13
"""


@dataclass
class FakeRun:
    run_dir: Path
    references: Path
    train_images: Path
    output_name: str = "luca"

    def sample_path(self, epoch: int, index: int) -> Path:
        return self.run_dir / "sample" / f"{self.output_name}_e{epoch:06d}_{index:02d}_20260101120000_{11 + index}.png"


def make_run(root: Path, *, epochs=(2, 4), prompts: str = PROMPTS, images=None, checkpoints=None,
             record: dict | None = None) -> FakeRun:
    """A run folder: configs, 3 training images, 2 references, samples per epoch, checkpoints, run.json.

    ``images(epoch, index)`` returns the PIL image of a sample (default: a distinct synthetic scene).
    """
    run_dir = root / "run"
    references = root / "references"
    train = root / "dataset" / "10_luca"
    for folder in (run_dir / "config", run_dir / "sample", references, train):
        folder.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        synthetic_scene(100 + i, (64, 64)).save(train / f"frame_{i}.png")
    for i in range(2):
        synthetic_scene(200 + i, (64, 64)).save(references / f"ref_{i}.png")
    prompt_file = root / "prompts.txt"
    prompt_file.write_text(prompts)
    (run_dir / "config" / "training.toml").write_text(
        f'output_name = "luca"\nsample_prompts = "{prompt_file}"\n')
    (run_dir / "config" / "dataset.toml").write_text(
        f'[general]\nresolution = 64\n[[datasets]]\n[[datasets.subsets]]\nimage_dir = "{train}"\n')
    run = FakeRun(run_dir, references, train)
    images = images or (lambda epoch, index: synthetic_scene(1000 * epoch + index, (64, 64)))
    for epoch in epochs:
        for index in range(3):
            image = images(epoch, index)
            if image is not None:
                image.save(run.sample_path(epoch, index))
    last = max(epochs) if epochs else 0
    for epoch in (checkpoints if checkpoints is not None else epochs):
        name = "luca.safetensors" if epoch == last else f"luca-{epoch:06d}.safetensors"
        (run_dir / name).write_bytes(b"weights")
    data = record if record is not None else {
        "status": "succeeded", "output_name": "luca", "argv": ["python", "train_network.py"],
        "summary": {"epochs": last},
        "epochs": [{"epoch": e, "started_at": "", "wall_seconds": 10.0 + e} for e in range(1, last + 1)],
        "losses": [{"step": s, "epoch": 1 + s // 3, "avr_loss": 0.2 - 0.01 * s, "s_per_it": 1.0}
                   for s in range(1, 3 * last + 1)],
        "validation_losses": [], "checkpoints": {}, "samples": {}}
    (run_dir / "run.json").write_text(json.dumps(data))
    return run


def black(size=(64, 64)) -> Image.Image:
    return Image.new("RGB", size, (0, 0, 0))
