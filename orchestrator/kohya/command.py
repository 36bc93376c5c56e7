"""The command line that starts sd-scripts, always as an argv list (never a shell string).

One GPU (or CPU): ``PYTHON SCRIPT --config_file TRAINING.toml [--console_log_simple] [--resume STATE]``
run with cwd = the sd-scripts folder. Several GPUs: ``PYTHON -m accelerate.commands.launch --multi_gpu
--num_processes N --gpu_ids 0,1 --num_cpu_threads_per_process 1 SCRIPT ...`` (``accelerate launch``
without relying on an ``accelerate`` executable on PATH).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.common.errors import UserInputError


@dataclass(frozen=True)
class TrainerCommand:
    argv: list[str]
    cwd: Path
    env: dict[str, str]  # added to the inherited environment


def parse_gpus(gpus: str | Sequence[int] | None, *, key: str = "gpus") -> list[int] | None:
    """``"0,1"`` → ``[0, 1]``; ``None``/``""`` → None (use what the machine offers). GPU numbers already
    parsed (a command's ``--gpus``, see ``common.commands.gpu_list``) pass through as a list."""
    if gpus is not None and not isinstance(gpus, str):
        return list(gpus) or None
    if gpus is None or not gpus.strip():
        return None
    try:
        ids = [int(part) for part in gpus.split(",") if part.strip()]
    except ValueError as error:
        raise UserInputError(f"--{key} wants GPU numbers separated by commas, got {gpus!r}",
                             key=key) from error
    if not ids or any(i < 0 for i in ids) or len(set(ids)) != len(ids):
        raise UserInputError(f"--{key} wants distinct GPU numbers ≥ 0, got {gpus!r}", key=key)
    return ids


def build_training_command(*, trainer_python: str, sd_scripts: Path, script_name: str, config_file: Path,
                           gpus: Sequence[int] | None = None, resume_state: Path | None = None,
                           console_log_simple: bool = True,
                           extra_args: Sequence[str] = ()) -> TrainerCommand:
    """The argv, working folder and environment of one training process.

    ``console_log_simple`` keeps sd-scripts' log lines unwrapped whatever the pane width (rich
    otherwise wraps them at the terminal's width; the log grammar reads both).
    """
    script = str(Path(sd_scripts) / script_name)
    arguments = ["--config_file", str(config_file)]
    if console_log_simple:
        arguments.append("--console_log_simple")
    if resume_state is not None:
        arguments += ["--resume", str(resume_state)]
    arguments += list(extra_args)
    env = {"PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpus)
    if gpus and len(gpus) > 1:
        # CUDA_VISIBLE_DEVICES renumbers the chosen GPUs from 0.
        launcher = [trainer_python, "-m", "accelerate.commands.launch", "--multi_gpu",
                    "--num_processes", str(len(gpus)), "--gpu_ids", ",".join(str(i) for i in range(len(gpus))),
                    "--num_cpu_threads_per_process", "1", "--mixed_precision", "no"]
        argv = [*launcher, script, *arguments]
    else:
        argv = [trainer_python, script, *arguments]
    return TrainerCommand(argv=argv, cwd=Path(sd_scripts), env=env)


# --- what a run folder's configs and states say --------------------------------------------------


def resume_step_offset(state_dir: Path) -> int:
    """Steps done before ``state_dir`` was saved (``train_state.json``'s ``current_step``, made the run's
    true count by ``train_state.record_true_step`` before a resume).

    sd-scripts counts a resumed run's progress bar from 0; the runner adds this to get global steps.
    """
    from orchestrator.kohya.train_state import read_train_state

    state = read_train_state(state_dir)
    return 0 if state is None else state.step


def newest_state_dir(run_dir: Path, output_name: str) -> Path | None:
    """The state folder to resume from: the highest epoch, then step (``train_state.newest_state``)."""
    from orchestrator.kohya.train_state import newest_state

    state = newest_state(run_dir, output_name)
    return None if state is None else state.path


# --- the OOM fallback --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchChange:
    batch_size: tuple[int, int]  # (before, after)
    gradient_accumulation_steps: tuple[int, int]

    def describe(self) -> str:
        return (f"batch {self.batch_size[0]}→{self.batch_size[1]}, gradient accumulation "
                f"{self.gradient_accumulation_steps[0]}→{self.gradient_accumulation_steps[1]}")


def halve_batch_size(config_file: Path, dataset_config_file: Path) -> BatchChange | None:
    """Halve the batch and double gradient accumulation in a run's rendered TOMLs (same effective batch).

    The dataset config's ``batch_size`` wins over ``--train_batch_size`` in sd-scripts, so it is changed
    where it is set (every ``[[datasets]]`` block, else ``[general]``, else the training config). None when
    the batch is already 1. Comment lines at the top of each file (the render header) are kept.
    """
    from orchestrator.common.tomlfile import parse_toml, write_toml

    training_text = Path(config_file).read_text(encoding="utf-8")
    dataset_text = Path(dataset_config_file).read_text(encoding="utf-8")
    training, dataset = parse_toml(training_text), parse_toml(dataset_text)
    tables = [t for t in training.values() if isinstance(t, dict)] or [training]
    holders = [block for block in dataset.get("datasets", []) if "batch_size" in block]
    if not holders and "batch_size" in dataset.get("general", {}):
        holders = [dataset["general"]]
    training_holder = next((t for t in tables if "train_batch_size" in t), None)
    before = int(holders[0]["batch_size"] if holders else (training_holder or {}).get("train_batch_size", 1))
    if before <= 1:
        return None
    after = before // 2
    for holder in holders:
        holder["batch_size"] = max(1, int(holder["batch_size"]) // 2)
    if not holders:
        (training_holder if training_holder is not None else tables[0])["train_batch_size"] = after
    accum_holder = next((t for t in tables if "gradient_accumulation_steps" in t), tables[0])
    accum = int(accum_holder.get("gradient_accumulation_steps", 1))
    accum_holder["gradient_accumulation_steps"] = accum * 2
    write_toml(config_file, training, header=_header(training_text))
    write_toml(dataset_config_file, dataset, header=_header(dataset_text))
    return BatchChange((before, after), (accum, accum * 2))


def _header(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return "\n".join(lines) + "\n\n" if lines else ""
