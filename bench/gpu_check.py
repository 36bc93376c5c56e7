"""GPU figures per model family: seconds per training step, peak VRAM, seconds per sample image, and the
evaluation's images per second, with random full-size weights, in a few minutes on one GPU.

Usage: ``python bench/gpu_check.py [--families sd15,sdxl,flux1,sd35] [--steps 6]``

Each family runs in its own process of the trainer's Python (``bench/_gpu_family_worker.py`` inside the
sd-scripts checkout of configs/paths.toml), so one family's memory never counts against the next: the
denoiser is sd-scripts' own class at its published size, bf16, gradient checkpointing, the family's LoRA
module at dim 16, batch 1 at the family's preset resolution (512 px SD1.5, 1024 px the others), cached text
encoders and latents (not built: the presets cache them). The evaluation figure is the CLIP encoder of
configs/evaluation/default.toml (random weights) embedding 224 px images in batches of 64.

Without a CUDA GPU it says so and exits 2: the figures mean nothing on a CPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.config.paths import load_paths  # noqa: E402

WORKER = Path(__file__).with_name("_gpu_family_worker.py")
FAMILIES = ("sd15", "sdxl", "flux1", "sd35")
NO_GPU_EXIT = 2


def gpu_name() -> str | None:
    """The first CUDA device's name, or None when torch sees no CUDA GPU."""
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def family_figures(family: str, *, trainer_python: str, sd_scripts: Path, steps: int, timeout: float) -> dict:
    completed = subprocess.run([trainer_python, str(WORKER), family, "--steps", str(steps)], cwd=sd_scripts,
                               capture_output=True, text=True, timeout=timeout, check=False)
    if completed.returncode != 0:
        tail = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        return {"family": family, "error": tail}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def evaluation_images_per_second(*, batch: int = 64, rounds: int = 5) -> float:
    import open_clip
    import torch

    from orchestrator.evaluate import load_evaluation_config

    config = load_evaluation_config(None)
    model = open_clip.create_model(config.clip.model, pretrained=None).to("cuda").eval().half()
    images = torch.randn(batch, 3, 224, 224, device="cuda", dtype=torch.half)
    with torch.no_grad():
        model.encode_image(images)
        torch.cuda.synchronize()
        begin = time.perf_counter()
        for _ in range(rounds):
            model.encode_image(images)
        torch.cuda.synchronize()
    return batch * rounds / (time.perf_counter() - begin)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated (default: all four)")
    parser.add_argument("--steps", type=int, default=6, help="timed training steps per family (default 6)")
    parser.add_argument("--timeout", type=float, default=150, help="seconds per family before it is skipped")
    args = parser.parse_args(argv)
    name = gpu_name()
    if name is None:
        print("gpu_check: no CUDA GPU here (torch.cuda.is_available() is False); these figures need one. "
              "Nothing was measured.", file=sys.stderr)
        return NO_GPU_EXIT
    families = [f for f in args.families.split(",") if f]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown families {unknown}; known: {', '.join(FAMILIES)}")
    paths = load_paths()
    print(f"gpu_check on {name}; sd-scripts {paths.sd_scripts}; random full-size weights, bf16, LoRA dim 16")
    print(f"{'family':<7} {'s/step':>8} {'peak VRAM GiB':>14} {'s/sample image':>15}  denoiser parameters")
    for family in families:
        try:
            row = family_figures(family, trainer_python=paths.trainer_python, sd_scripts=paths.sd_scripts,
                                 steps=args.steps, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            row = {"family": family, "error": f"over {args.timeout:g} s"}
        if "error" in row:
            print(f"{family:<7} failed: {row['error']}")
            continue
        print(f"{family:<7} {row['seconds_per_step']:>8.3f} {row['peak_vram_gib']:>14.2f} "
              f"{row['seconds_per_sample_image']:>15.2f}  {row['parameters'] / 1e9:.2f} B")
    print(f"evaluation: {evaluation_images_per_second():.0f} images/s (CLIP image embeddings, fp16, batch 64)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
