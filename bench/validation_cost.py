"""What validation loss costs, measured on the real sd-scripts transcripts, then scaled to the presets.

No trainer is run. From each recorded CPU run (SD1.5 and SDXL architecture, 64 px, batch 1) it reads:

- a training step's time: consecutive drawings of the ``steps`` bar within one epoch (tqdm with
  ``smoothing=0`` shows elapsed / n, so ``n * s_per_it`` is the elapsed time; the difference of two
  drawings is one step), median over the run;
- a validation pass's time: the rate of each completed ``epoch validation steps`` bar (one pass = one
  batch at one of the 4 fixed timesteps, forward only).

Their ratio ``r`` (forward pass / training step) then gives the cost of validating one epoch relative
to training it: ``PASSES_PER_BATCH * r * validation_batches / training_batches``, where sd-scripts
builds the validation set from the same subsets, so ``num_repeats`` and ``batch_size`` apply to it too.
Holding images out also shortens every training epoch by the held-out share; both are printed.

On a GPU a forward pass is about a third of a training step (backward is about two forwards; with
gradient checkpointing a quarter); the CPU transcripts at 64 px are overhead-bound, so their ``r`` is
the pessimistic end. The bench prints both.

    .venv/bin/python bench/validation_cost.py [--images 413] [--share 0.1]
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.config.presets import load_preset  # noqa: E402
from orchestrator.kohya.validation import PASSES_PER_BATCH, split_images  # noqa: E402

TRANSCRIPTS = ROOT / "tests" / "runner" / "sd_scripts_transcripts"
_SEGMENT = re.compile(r"\r\n|[\r\n]|\x1b\[[0-9;?]*[A-HJKST]")
_BAR = re.compile(r"^(?P<desc>steps|epoch validation steps):\s*\d+%\|[^|]*\|\s*(?P<n>\d+)/(?P<total>\d+) "
                  r"\[[^,\]]*(?:,\s*(?P<rate>[\d.]+)(?P<unit>s/it|it/s))?(?P<post>[^\]]*)\]")
_EPOCH = re.compile(r"^epoch (\d+)/(\d+)$")
GPU_FORWARD_SHARE = 1 / 3  # forward / (forward + backward) of a training step without gradient checkpointing


def runs(path: Path) -> dict[str, str]:
    """The transcript's runs by header (``RUN A ...``), error cases left out."""
    text = path.read_bytes().decode("utf-8")
    parts = re.split(r"^##########[ \n]", text, flags=re.M)[1:]
    return {(part.split(":")[0][:12] if part.startswith("RUN") else "run"): part for part in parts
            if not part.startswith("ERROR")}


def timings(text: str) -> tuple[list[float], list[float]]:
    """Seconds per training step and seconds per validation pass found in one run's log."""
    steps: list[float] = []
    passes: list[float] = []
    last_elapsed: tuple[int, int, float] | None = None  # epoch, step, elapsed
    epoch = 0
    open_bar: tuple[int, float] | None = None  # a validation bar's last completed drawing: passes, s/pass
    validating = False
    for segment in _SEGMENT.split(text):
        line = segment.strip()
        if not line:
            continue
        if match := _EPOCH.match(line):
            epoch = int(match[1])
            continue
        bar = _BAR.match(line)
        if bar is None or bar["desc"] != "epoch validation steps":
            if validating and open_bar is not None:
                passes.append(open_bar[1])
            validating, open_bar = False, None
        if bar is None:
            continue
        n, total = int(bar["n"]), int(bar["total"])
        if bar["desc"] == "epoch validation steps" and n == 0:
            validating = True  # a new bar; a completed drawing before it is an old bar re-drawing itself
            continue
        if bar["rate"] is None:
            continue
        rate = float(bar["rate"])
        seconds = rate if bar["unit"] == "s/it" else 1.0 / rate
        if bar["desc"] == "epoch validation steps":
            if validating and n == total and "val_epoch_avg_loss" in bar["post"]:
                open_bar = (n, seconds)
            continue
        elapsed = n * seconds
        if last_elapsed is not None and last_elapsed[0] == epoch and n == last_elapsed[1] + 1:
            steps.append(elapsed - last_elapsed[2])
        if last_elapsed is None or n != last_elapsed[1]:
            last_elapsed = (epoch, n, elapsed)
    return steps, passes


def measured_ratio() -> list[tuple[str, float, float]]:
    rows = []
    for log in sorted(TRANSCRIPTS.glob("*.log")):
        for name, text in runs(log).items():
            steps, passes = timings(text)
            if steps and passes:
                rows.append((f"{'sdxl' if 'sdxl' in log.stem else 'sd15'} {name}",
                             statistics.median(steps), statistics.median(passes)))
    return rows


def preset_cost(preset_name: str, images: int, share: float, ratio: float) -> dict[str, float]:
    preset = load_preset(preset_name)
    batch = int(preset.dataset.get("batch_size", 1))
    repeats = int(preset.dataset.get("num_repeats", 1))
    flat = {k: v for table in preset.sections.values() for k, v in table.items()}
    every = int(flat.get("sample_every_n_epochs") or 1)
    split = split_images([Path(f"/d/{i:04d}.png") for i in range(images)], share, 1)
    trained, held = len(split.training), len(split.held_out) + len(split.in_both)
    full_batches = math.ceil(images * repeats / batch)
    train_batches = math.ceil(trained * repeats / batch)
    val_batches = math.ceil(held * repeats / batch)
    per_validated_epoch = PASSES_PER_BATCH * ratio * val_batches / train_batches
    # Over `every` epochs: one validation (render validates on the sample schedule), shorter epochs.
    with_validation = every * train_batches * (1 + per_validated_epoch / every)
    return {"batch": batch, "repeats": repeats, "every": every, "trained": trained, "held": held,
            "validation_vs_epoch": per_validated_epoch,
            "net_vs_full_data": with_validation / (every * full_batches) - 1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--images", type=int, default=413, help="images in the training folder (README: 413)")
    parser.add_argument("--share", type=float, default=0.1, help="validation_split to cost")
    args = parser.parse_args(argv)
    rows = measured_ratio()
    print("run                           s/step  s/pass  pass/step")
    for name, step, forward in rows:
        print(f"{name:<30}{step:6.2f}  {forward:6.3f}  {forward / step:8.3f}")
    cpu_ratio = statistics.median(forward / step for _, step, forward in rows)
    print(f"median forward-pass / training-step ratio on CPU: {cpu_ratio:.3f} (GPU estimate {GPU_FORWARD_SHARE:.3f})")
    print(f"\n{args.images} images, validation_split {args.share:g}, validated every sample epoch:")
    print("preset                    ratio  batch repeats every trained held  val/epoch  net vs all-data training")
    for preset in ("luca_final_v1_pure", "luca_trial3.6_optimized", "sdxl_16gb_optimized"):
        for label, ratio in (("cpu", cpu_ratio), ("gpu", GPU_FORWARD_SHARE)):
            cost = preset_cost(preset, args.images, args.share, ratio)
            print(f"{preset:<26}{label}   {cost['batch']:5d} {cost['repeats']:7d} {cost['every']:5d} "
                  f"{cost['trained']:7d} {cost['held']:4d}  {100 * cost['validation_vs_epoch']:7.1f}%  "
                  f"{100 * cost['net_vs_full_data']:+6.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
