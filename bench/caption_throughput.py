"""Caption throughput on the tiny random Qwen2-VL, CPU: batch 1 vs batch 8, and the wrapper's overhead.

    .venv/bin/python bench/caption_throughput.py [--images 16] [--rounds 3] [--size 320x180]

1. images/s of bare back-end calls (processor + ``generate``) at batch 1 and at batch 8, side by side.
2. ``caption_folder`` (plan, read images from disk, parse, template, atomic write) at batch 8 against
   the bare calls on the same, already decoded images: the wrapper's overhead (target <= 10%).
Each figure is the best of ``--rounds`` alternating runs, so that a neighbour's CPU burst hurts both
sides alike. The CLIP token check runs once after a folder and is timed separately.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.captions import (  # noqa: E402
    build_prompt,
    build_tiny_qwen2_vl,
    caption_folder,
    load_profile,
    load_qwen_backend,
)
from orchestrator.captions.backends import DEFAULT_MAX_NEW_TOKENS  # noqa: E402
from orchestrator.captions.runner import read_image  # noqa: E402
from orchestrator.captions.tokens import check_token_lengths  # noqa: E402

PROFILE = Path(__file__).resolve().parents[1] / "configs" / "characters" / "luca.yaml"


def _bare(backend, images, prompt: str, batch_size: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(images), batch_size):
        backend.describe(images[start : start + batch_size], prompt)
    return time.perf_counter() - started


def _seconds(values: list[float]) -> str:
    return "[" + ", ".join(f"{value:.2f}" for value in values) + "]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", default="320x180", help="frame size WxH written to disk")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1: stable figures on a shared machine)")
    parser.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS,
                        help="answer length; the production default, since a random model never stops early")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))

    import torch
    from PIL import Image

    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model_dir = build_tiny_qwen2_vl(tmp_path / "tiny-qwen2-vl")
        backend = load_qwen_backend("qwen2_vl", str(model_dir), device="cpu",
                                    max_new_tokens=args.max_new_tokens)
        profile = load_profile(PROFILE)
        prompt = build_prompt(profile)
        frames = tmp_path / "frames"
        frames.mkdir()
        for index in range(args.images):
            colour = ((index * 70) % 256, (index * 130) % 256, (index * 40) % 256)
            Image.new("RGB", (width, height), colour).save(frames / f"frame_{index:03d}.png")
        images = [read_image(path) for path in sorted(frames.glob("*.png"))]
        _bare(backend, images[:2], prompt, 2)  # warm-up: first-call allocations

        bare_1, bare_8, wrapped_8, inside_8 = [], [], [], []
        for _ in range(args.rounds):
            bare_1.append(_bare(backend, images, prompt, 1))
            bare_8.append(_bare(backend, images, prompt, 8))
            report = caption_folder(frames, profile, backend=backend, batch_size=8, overwrite=True,
                                    progress=False, check_tokens=False)
            wrapped_8.append(report.seconds)
            inside_8.append(report.generate_seconds)
        started = time.perf_counter()
        check = check_token_lengths({p: p.read_text() for p in frames.glob("*.txt")})
        token_seconds = time.perf_counter() - started

    n = args.images
    best_1, best_8, best_wrapped = min(bare_1), min(bare_8), min(wrapped_8)
    print(f"tiny Qwen2-VL on CPU ({torch.get_num_threads()} threads), {n} frames of {width}x{height}, "
          f"{args.max_new_tokens} new tokens, best of {args.rounds}")
    print(f"{'':28}{'batch 1':>12}{'batch 8':>12}{'ratio':>10}")
    print(f"{'bare describe, images/s':28}{n / best_1:>12.2f}{n / best_8:>12.2f}{best_1 / best_8:>9.2f}x")
    outside = min(wrapped / inside - 1 for wrapped, inside in zip(wrapped_8, inside_8, strict=True))
    print(f"wrapper at batch 8: {best_wrapped:.3f}s vs bare {best_8:.3f}s -> overhead "
          f"{(best_wrapped / best_8 - 1) * 100:+.1f}% (target <= 10%)")
    print(f"same run, time outside the back-end calls (read, parse, template, write, bar): "
          f"{outside * 100:+.1f}% of the time inside them")
    print("every round, seconds (a spread means a busy machine): "
          f"bare batch 1 {_seconds(bare_1)}, bare batch 8 {_seconds(bare_8)}, wrapper batch 8 {_seconds(wrapped_8)}")
    print(f"token check (once per run, {len(check.counts)} captions, includes loading the CLIP BPE): "
          f"{token_seconds:.2f}s")


if __name__ == "__main__":
    main()
