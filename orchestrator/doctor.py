"""`lora-pipeline doctor`: is this machine ready to train? One line per fact, no crash on any answer."""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.console import Console

from orchestrator.config.paths import ProjectPaths, add_location_arguments, model_path, paths_from_args

Status = Literal["ok", "warn", "fail"]
_STYLE = {"ok": "green", "warn": "yellow", "fail": "red"}
# What train_network.py needs importable in the trainer's environment.
TRAINER_IMPORTS = ("torch", "torchvision", "diffusers", "transformers", "accelerate", "safetensors", "toml",
                   "voluptuous")
MIN_FREE_DISK_GIB = 20.0


@dataclass(frozen=True)
class Finding:
    topic: str
    status: Status
    detail: str


def check_python_and_torch() -> list[Finding]:
    findings = [Finding("python", "ok", f"{platform.python_version()} ({sys.executable})")]
    try:
        import torch
    except ImportError as error:
        return [*findings, Finding("torch", "warn", f"not importable here ({error}); "
                                   "curation, captions and evaluation need it")]
    if torch.cuda.is_available():
        detail = f"{torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} device(s)"
        return [*findings, Finding("torch", "ok", detail)]
    return [*findings, Finding("torch", "warn", f"{torch.__version__}, CUDA not available: CPU only")]


def check_gpus() -> list[Finding]:
    from orchestrator.common.gpu import query_gpus

    report = query_gpus()
    if not report.available:
        return [Finding("gpu", "warn", f"none: {report.reason}")]
    return [Finding(f"gpu {g.index}", "ok", f"{g.name}: {g.free_gib:.1f} GiB free of {g.total_mib / 1024:.1f} GiB"
                    + (f", {g.temperature_c} °C" if g.temperature_c is not None else ""))
            for g in report.gpus]


def check_tmux() -> list[Finding]:
    tmux = shutil.which("tmux")
    if not tmux:
        return [Finding("tmux", "fail", "not installed: `apt-get install tmux` (runs live in tmux sessions)")]
    version = subprocess.run([tmux, "-V"], capture_output=True, text=True, check=False).stdout.strip()
    return [Finding("tmux", "ok", f"{version} ({tmux})")]


def check_sd_scripts(paths: ProjectPaths) -> list[Finding]:
    from orchestrator.kohya.checkout import inspect_checkout

    status = inspect_checkout(paths.sd_scripts)
    if not status.present:
        return [Finding("sd-scripts", "fail", status.describe())]
    return [Finding("sd-scripts", "ok" if status.matches_pin else "warn", status.describe())]


def check_trainer_python(paths: ProjectPaths) -> list[Finding]:
    python = paths.trainer_python
    if not (shutil.which(python) or Path(python).is_file()):
        return [Finding("trainer python", "fail", f"{python} not found: run scripts/setup.sh, or point "
                        "--trainer-python / LORA_PIPELINE_TRAINER_PYTHON at sd-scripts' environment")]
    probe = ("import importlib, sys\nmissing=[]\nfor n in sys.argv[1:]:\n"
             "    try: importlib.import_module(n)\n    except Exception as e: missing.append(f'{n} ({e})')\n"
             "import torch\nprint(torch.__version__, 'cuda' if torch.cuda.is_available() else 'cpu')\n"
             "print('; '.join(missing))")
    try:
        completed = subprocess.run([python, "-c", probe, *TRAINER_IMPORTS], capture_output=True, text=True,
                                   timeout=180, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return [Finding("trainer python", "fail", f"{python}: {error}")]
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        tail = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        return [Finding("trainer python", "fail", f"{python}: {tail}")]
    missing = lines[1] if len(lines) > 1 else ""
    if missing:
        return [Finding("trainer python", "fail", f"{python}: cannot import {missing}")]
    return [Finding("trainer python", "ok", f"{python} (torch {lines[0]})")]


def check_base_models(paths: ProjectPaths) -> list[Finding]:
    from orchestrator.kohya.families import FAMILIES

    findings = []
    for family in FAMILIES.values():
        if family.base_model.file_only:
            findings.append(_family_model_files(paths, family.name))
            continue
        label, model = f"base model {family.name}", model_path(paths, family.base_model.paths_key)
        if Path(model).exists():
            findings.append(Finding(label, "ok", model))
        elif len(model.split("/")) == 2 and not model.startswith((".", "/", "~")):
            findings.append(Finding(label, "warn", f"{model} is a hub id: downloaded on first use "
                                    "(set base_model_* in configs/paths.local.toml for a local file)"))
        else:
            findings.append(Finding(label, "fail", f"{model} does not exist"))
    return findings


def _family_model_files(paths: ProjectPaths, name: str) -> Finding:
    """A family whose model files are local files only (FLUX.1, Chroma, SD3.5): all set, all there, the
    base model not another family's. None set is a warning: that family's presets are refused until they are."""
    from orchestrator.kohya.check import model_input_problems
    from orchestrator.kohya.families import FAMILIES

    family = FAMILIES[name]
    label = f"models {family.name}"
    values = {m.argument: model_path(paths, m.paths_key) for m in family.models}
    unset = [m.paths_key for m in family.models if not values[m.argument]]
    if len(unset) == len(family.models):
        return Finding(label, "warn", f"not set ({', '.join(unset)} in configs/paths.toml): {family.label} "
                       "presets are refused until they are")
    problems = [p for p in model_input_problems(family, values) if values[p.key]]  # unset ones: the warning below
    if problems:
        return Finding(label, "fail", "; ".join(f"{p.key}: {p.message}" for p in problems))
    if unset:
        return Finding(label, "warn", f"{', '.join(unset)} not set in configs/paths.toml")
    return Finding(label, "ok", ", ".join(values.values()))


def check_disk(paths: ProjectPaths) -> list[Finding]:
    target = paths.output_root
    while not target.exists():
        target = target.parent
    free_gib = shutil.disk_usage(target).free / 2**30
    status: Status = "ok" if free_gib >= MIN_FREE_DISK_GIB else "warn"
    return [Finding("disk", status, f"{free_gib:.0f} GiB free at {target}"
                    + ("" if status == "ok" else f" (checkpoints and states want >= {MIN_FREE_DISK_GIB:.0f} GiB)"))]


def run_doctor(paths: ProjectPaths) -> list[Finding]:
    return [*check_python_and_torch(), *check_gpus(), *check_tmux(), *check_sd_scripts(paths),
            *check_trainer_python(paths), *check_base_models(paths), *check_disk(paths)]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("doctor", help="check this machine: torch, GPUs, tmux, sd-scripts, disk")
    parser.add_argument("--strict", action="store_true", help="exit 1 when anything is not ok")
    add_location_arguments(parser)
    parser.set_defaults(handler=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    console = Console()
    findings = run_doctor(paths_from_args(args))
    width = max(len(f.topic) for f in findings)
    for finding in findings:
        style = _STYLE[finding.status]
        console.print(f"[{style}]{finding.status:>4}[/{style}]  {finding.topic:<{width}}  {finding.detail}",
                      highlight=False, soft_wrap=True)
    failed = [f for f in findings if f.status == "fail"]
    if failed:
        console.print(f"[red]{len(failed)} problem(s) to fix before training[/red]")
    return 1 if failed and args.strict else 0
