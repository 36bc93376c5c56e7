"""Checks made before any GPU time is spent; each failure is one line a person can act on.

- the dataset: every image folder exists, has images, a caption for each image, and no unreadable image;
- the base model exists on disk (or is a hub id);
- free VRAM (pynvml) covers what the run needs (the preset's ``min_vram_gb``, or ``--min-free-vram``) on
  each GPU used; without an NVIDIA driver the run may go on only when it needs no VRAM (``0``) or
  ``allow_cpu`` is set;
- free disk covers every checkpoint (and state) that will be saved;
- tmux, the trainer's Python and sd-scripts are present (a commit other than the pin is a warning);
- no other run holds the output folder, and no other process of this tool (a search, a queue) holds a GPU
  the run asks for.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from orchestrator.common.gpu import GpuInfo, query_gpus
from orchestrator.kohya.arguments import save_plan
from orchestrator.kohya.checkout import inspect_checkout
from orchestrator.kohya.families import FAMILIES
from orchestrator.runner.gpu_lock import gpu_holder, gpu_lock_folder

_KOHYA_SUBSET = re.compile(r"^\d+_.+$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
# A saved LoRA weighs the family's MB per unit of network_dim (kohya/families.py); a state adds the fp32
# weights and two AdamW moments.
_STATE_FACTOR = 6.0
_UNKNOWN_DIM = 32  # a dim the config leaves unset is estimated on the large side
_DISK_MARGIN_GB = 1.0


@dataclass
class PreflightReport:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_vram(min_vram_gb: float, gpu_ids: list[int] | None, *, allow_cpu: bool = False) -> PreflightReport:
    """``min_vram_gb``: GiB of GPU memory the run needs (the preset's estimate, or ``--min-free-vram``).

    A card whose *total* memory is below the need can never run it; a card with enough in all but not
    enough *free* is busy. An idle 16 GB card shows about 15.5-15.9 GiB free (the driver keeps some), so
    a need is what the run uses, never the card's nominal size. ``0`` skips the check.
    """
    report = PreflightReport()
    found = query_gpus()
    gpus, reason = list(found.gpus), found.reason
    if not gpus:
        if min_vram_gb <= 0 or allow_cpu:
            report.notes.append(f"no GPU: {reason}; this is a CPU run (slow)")
        else:
            report.problems.append(f"VRAM: {reason}; the run needs {min_vram_gb:g} GiB on a GPU "
                                   "(use a GPU machine, or --allow-cpu for a slow CPU run)")
        return report
    chosen = gpus if gpu_ids is None else [g for g in gpus if g.index in gpu_ids]
    missing = sorted(set(gpu_ids or []) - {g.index for g in gpus})
    if missing:
        report.problems.append(f"VRAM: GPU(s) {missing} not found; present: {[g.index for g in gpus]}")
    if gpu_ids is None:
        chosen = chosen[:1]
    override = "(--min-free-vram GIB sets the need, 0 skips this check)"
    for gpu in chosen:
        total_gib = gpu.total_mib / 1024
        if min_vram_gb <= 0:
            report.notes.append(f"GPU {gpu.index} ({gpu.name}): VRAM not checked (need 0)")
        elif total_gib < min_vram_gb:
            report.problems.append(f"VRAM: GPU {gpu.index} ({gpu.name}) has {total_gib:.1f} GiB in all, the "
                                   f"run needs {min_vram_gb:g} GiB {override}")
        elif gpu.free_gib < min_vram_gb:
            report.problems.append(f"VRAM: GPU {gpu.index} ({gpu.name}) has {gpu.free_gib:.1f} of "
                                   f"{total_gib:.1f} GiB free, the run needs {min_vram_gb:g} GiB "
                                   f"({_who_holds_it(gpu)}) {override}")
        else:
            report.notes.append(f"GPU {gpu.index} ({gpu.name}): {gpu.free_gib:.1f}/{total_gib:.1f} GiB free, "
                                f"the run needs {min_vram_gb:g}")
    return report


def _who_holds_it(gpu: GpuInfo) -> str:
    if gpu.own_mib <= 0:
        return "close other GPU programs"
    # The search scores on the training GPU unless told otherwise; its share is named so the fix is clear.
    return (f"{gpu.own_gib:.1f} GiB of it held by this process, pid {os.getpid()}: score on another device "
            f"with --device cuda:N or cpu; close other GPU programs")


def check_dataset(dataset: dict[str, Any]) -> PreflightReport:
    """Every subset folder passes the dataset stage's integrity check (images = captions, none corrupt).

    Problems are grouped: one line per kind of problem and folder, naming the first case.
    """
    from orchestrator.dataset.layout import validate_kohya_dataset

    report = PreflightReport()
    subsets = [s for block in dataset.get("datasets", []) or [] for s in block.get("subsets", []) or []]
    if not subsets:
        report.problems.append("dataset: the dataset config has no subsets (no image folders)")
    for subset in subsets:
        folder = Path(str(subset.get("image_dir", "")))
        if not _KOHYA_SUBSET.match(folder.name):
            report.problems.append(f"dataset: {folder} is not a kohya subset folder named "
                                   "{repeats}_{name} (run `lora-pipeline dataset prepare`)")
            continue
        checked = validate_kohya_dataset(folder)
        by_code: dict[str, list] = {}
        for problem in checked.problems:
            by_code.setdefault(problem.code, []).append(problem)
        for code, problems in by_code.items():
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            report.problems.append(f"dataset: {code.replace('_', ' ')}: {problems[0]}{more}")
        if not checked.problems:
            report.notes.append(f"dataset: {folder}: {checked.counts_line()}")
    return report


def check_base_model(model: str | None) -> PreflightReport:
    report = PreflightReport()
    if not model:
        report.problems.append("base model: pretrained_model_name_or_path is not set")
    elif Path(model).expanduser().exists():
        report.notes.append(f"base model: {model}")
    elif _HUB_ID.match(model) and not model.startswith((".", "/", "~")):
        report.warnings.append(f"base model: {model} is a hub id; it must be in the Hugging Face cache or "
                               "downloadable")
    else:
        report.problems.append(f"base model: {model} does not exist")
    return report


def check_model_files(family_name: str, training: dict[str, Any]) -> PreflightReport:
    """Every model file the family needs (FLUX.1: transformer, CLIP-L, T5-XXL, autoencoder) is set in
    configs/paths.toml and exists, and the base model is not another family's checkpoint."""
    from orchestrator.kohya.check import model_input_problems
    from orchestrator.kohya.families import BASE_MODEL_ARGUMENT, family_named

    family = family_named(family_name, key="family")
    report = PreflightReport()
    problems = model_input_problems(family, training)
    report.problems += [f"model files: {p.key}: {p.message}" for p in problems]
    base_reported = any(p.key == BASE_MODEL_ARGUMENT for p in problems)
    if not base_reported and not family.base_model.file_only:
        report = merge(report, check_base_model(training.get(BASE_MODEL_ARGUMENT)))
    elif not base_reported:
        report.notes.append(f"base model: {training.get(BASE_MODEL_ARGUMENT)}")
    return report


def estimate_checkpoint_bytes(training: dict[str, Any], family: str) -> int:
    """Disk a run will fill with checkpoints (and the states it keeps at once when ``save_state``)."""
    plan = save_plan(training)
    return int(plan.checkpoints * _checkpoint_bytes(training, family) + plan.states_on_disk *
               estimate_state_bytes(training, family))


def estimate_state_bytes(training: dict[str, Any], family: str) -> int:
    """Disk one saved training state of this run takes (before one exists to measure)."""
    return int(_STATE_FACTOR * _checkpoint_bytes(training, family))


def _checkpoint_bytes(training: dict[str, Any], family: str) -> float:
    per_dim = FAMILIES[family].lora_mb_per_dim if family in FAMILIES else 1.0
    return per_dim * (save_plan(training).network_dim or _UNKNOWN_DIM) * 2**20


def check_disk(run_dir: Path, needed_bytes: int, *, reserved_bytes: int = 0) -> PreflightReport:
    """Free disk covers the run's outputs plus ``reserved_bytes`` promised to others (the paused runs'
    states a search may still keep within its state budget)."""
    report = PreflightReport()
    existing = next(p for p in (run_dir, *run_dir.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    needed = needed_bytes + reserved_bytes + _DISK_MARGIN_GB * 2**30
    if free < needed:
        reserve = (f" and {reserved_bytes / 2**30:.1f} GB kept for paused runs' states (the state budget)"
                   if reserved_bytes else "")
        report.problems.append(f"disk: {free / 2**30:.1f} GB free at {existing}, the run needs about "
                               f"{(needed - reserved_bytes) / 2**30:.1f} GB for its checkpoints{reserve}")
    return report


def check_tools(*, sd_scripts: Path, trainer_python: str, script_name: str) -> PreflightReport:
    from orchestrator.runner.tmux import tmux_binary

    report = PreflightReport()
    if tmux_binary() is None:
        report.problems.append("tmux: not installed (apt-get install tmux)")
    checkout = inspect_checkout(Path(sd_scripts))
    if not checkout.present:
        report.problems.append(f"sd-scripts: {checkout.describe()}")
    elif not (Path(sd_scripts) / script_name).is_file():
        report.problems.append(f"sd-scripts: {script_name} not found in {sd_scripts}")
    elif not checkout.matches_pin:
        report.warnings.append(f"sd-scripts: {checkout.describe()}")
    python = trainer_python
    if ("/" in python and not Path(python).exists()) or ("/" not in python and shutil.which(python) is None):
        report.problems.append(f"trainer Python: {python} not found (build .venv-trainer or pass "
                               "--trainer-python)")
    return report


def check_gpu_locks(gpu_ids: Sequence[int] | None) -> PreflightReport:
    """A GPU whose lock (gpu_lock.py) another process holds already trains: one trainer per GPU.

    The process that starts this run, or one of its parents (a queue runner launching ``train``), may hold
    the lock itself: it took it for this very run.
    """
    report = PreflightReport()
    ours = {os.getpid(), *(parent.pid for parent in psutil.Process().parents())}
    for gpu in gpu_ids or ():
        holder = gpu_holder(gpu)
        if holder is not None and holder.get("pid") not in ours:
            report.problems.append(f"GPU {gpu}: in use by pid {holder.get('pid', '?')} "
                                   f"({holder.get('purpose', 'another process of this tool')}); one trainer per "
                                   f"GPU: wait for it or pick other --gpus (lock file "
                                   f"{gpu_lock_folder() / f'gpu_{gpu}.lock'})")
    return report


def merge(*reports: PreflightReport) -> PreflightReport:
    merged = PreflightReport()
    for report in reports:
        merged.problems += report.problems
        merged.warnings += report.warnings
        merged.notes += report.notes
    return merged
