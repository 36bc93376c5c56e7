"""``RUN_DIR/run.json``: what a training run did, rewritten atomically as its log is read.

The record is a pure function of the log's events plus what the supervisor and disk report, so reading
the same log again (after the orchestrator died, ``watch``) gives the same record; only the wall-clock
times of epochs seen live are kept from the earlier record.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_write_json
from orchestrator.common.errors import UserInputError
from orchestrator.kohya.log_grammar import (
    CheckpointSaved,
    EpochStarted,
    Failure,
    Finished,
    LogEvent,
    RunSummary,
    SamplesGenerated,
    StateSaved,
    StepProgress,
    ValidationLoss,
)

RECORD_NAME = "run.json"
STATUSES = ("pending", "running", "succeeded", "failed", "stopped")
ACTIVE_STATUSES = ("pending", "running")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


@dataclass
class RunRecord:
    """One run folder's record; field names are the keys of ``run.json``."""

    output_name: str
    run_dir: str
    status: str = "pending"
    argv: list[str] = field(default_factory=list)
    # Variables the run set on top of the caller's environment (which the trainer gets whole).
    environment_set: dict[str, str] = field(default_factory=dict)
    config_file: str | None = None
    dataset_config_file: str | None = None
    tmux_session: str | None = None
    tmux_socket: str | None = None  # None: tmux's default server
    pid: int | None = None
    log_path: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    step_offset: int = 0  # steps done before a --resume (sd-scripts counts a resumed run from 0)
    summary: dict[str, int | None] = field(default_factory=dict)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    losses: list[dict[str, Any]] = field(default_factory=list)
    validation_losses: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: dict[str, str] = field(default_factory=dict)
    samples: dict[str, list[str]] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    exit_code: int | None = None
    signal: int | None = None
    failure: dict[str, Any] | None = None
    stop_reason: str | None = None  # why a stop was asked for: user, nan_loss, stalled, or the caller's
    finished_logged: bool = False  # the log said `model saved.`
    relaunches: list[dict[str, Any]] = field(default_factory=list)

    # -- reading --

    @property
    def path(self) -> Path:
        return Path(self.run_dir) / RECORD_NAME

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def current_epoch(self) -> int:
        return self.epochs[-1]["epoch"] if self.epochs else 0

    @property
    def last_loss(self) -> dict[str, Any] | None:
        return self.losses[-1] if self.losses else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def save(self) -> Path:
        return atomic_write_json(self.path, self.to_json())

    def steps_through(self, epoch: int) -> int | None:
        """The run's step count at the end of ``epoch``, as its log showed it (None: no step logged)."""
        steps = [loss["step"] for loss in self.losses if loss["epoch"] <= epoch]
        return max(steps) if steps else None

    def rewind_to(self, epoch: int, step: int) -> None:
        """Forget what the record holds past ``epoch`` (step ``step``): a resume from the state saved
        there trains it again, so every epoch, step and output is in the record once across segments."""
        self.epochs = [entry for entry in self.epochs if entry["epoch"] <= epoch]
        self.losses = [loss for loss in self.losses if loss["step"] <= step and loss["epoch"] <= epoch]
        self.validation_losses = [entry for entry in self.validation_losses if entry["epoch"] <= epoch]
        for outputs in (self.checkpoints, self.samples, self.states):
            for key in [key for key in outputs if key.isdigit() and int(key) > epoch]:
                del outputs[key]

    # -- events --

    def apply(self, event: LogEvent, *, seen_at: str | None = None) -> None:
        """Fold one log event into the record (idempotent: replaying a log changes nothing)."""
        if isinstance(event, StepProgress):
            step = event.step + self.step_offset
            # A step is logged twice (stale then fresh loss) and a resume re-runs steps: later wins.
            while self.losses and self.losses[-1]["step"] >= step:
                self.losses.pop()
            entry: dict[str, Any] = {"step": step, "epoch": event.epoch, "avr_loss": event.avr_loss,
                                     "s_per_it": event.s_per_it}
            if event.avr_loss is not None and not math.isfinite(event.avr_loss):
                # JSON has no NaN: the value becomes null and its spelling is kept beside it.
                entry.update(avr_loss=None, non_finite=str(event.avr_loss))
            self.losses.append(entry)
            self.summary.setdefault("total_steps", event.total_steps + self.step_offset)
        elif isinstance(event, EpochStarted):
            seen_at = seen_at or now_iso()
            self._close_epoch(event.epoch - 1, seen_at)
            if not any(entry["epoch"] == event.epoch for entry in self.epochs):
                self.epochs.append({"epoch": event.epoch, "started_at": seen_at, "wall_seconds": None})
            self.summary["epochs"] = event.total_epochs
        elif isinstance(event, ValidationLoss):
            self.validation_losses = [v for v in self.validation_losses if v["epoch"] != event.epoch]
            self.validation_losses.append({"epoch": event.epoch, "loss": event.loss})
        elif isinstance(event, CheckpointSaved):
            self.checkpoints[str(event.epoch)] = event.path
        elif isinstance(event, SamplesGenerated):
            self.samples.setdefault(str(event.epoch), [])
        elif isinstance(event, StateSaved):
            self.states[str(event.epoch)] = "last" if event.is_last else f"e{event.epoch:06d}"
        elif isinstance(event, RunSummary):
            values = {"images_x_repeats": event.images_x_repeats, "batches_per_epoch": event.batches_per_epoch,
                      "epochs": event.epochs, "grad_accum": event.grad_accum,
                      "total_steps": event.total_steps}
            self.summary.update({k: v for k, v in values.items() if v is not None})
        elif isinstance(event, Finished):
            self.finished_logged = True
            self._close_epoch(self.current_epoch, seen_at or now_iso())
        elif isinstance(event, Failure):
            current = Failure(**{**self.failure, "lines": tuple(self.failure["lines"])}) if self.failure else None
            if event.outranks(current):
                self.failure = {"cause": event.cause, "message": event.message, "lines": list(event.lines)}

    def _close_epoch(self, epoch: int, seen_at: str) -> None:
        # Only an open epoch is closed, so replaying a log keeps the times measured live.
        for entry in self.epochs:
            if entry["epoch"] == epoch and entry["wall_seconds"] is None:
                entry["wall_seconds"] = round(_seconds_between(entry["started_at"], seen_at), 1)


def load_run_record(run_dir: str | Path) -> RunRecord:
    """The record of ``run_dir``; a missing or unreadable ``run.json`` is a UserInputError."""
    path = Path(run_dir) / RECORD_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))  # a byte-order mark is not damage
    except FileNotFoundError as error:
        raise UserInputError("no run record here (was a run started in this folder?)", path=path) from error
    except (OSError, ValueError) as error:
        raise UserInputError(f"unreadable run record: {error}", path=path) from error
    if not isinstance(data, dict):
        raise UserInputError(f"not a run record (a JSON {type(data).__name__}, not an object)", path=path)
    data = {"run_dir": str(run_dir), **data}  # a record copied or written by hand may leave it out
    known = {f.name for f in fields(RunRecord)}
    required = [f.name for f in fields(RunRecord)
                if f.default is MISSING and f.default_factory is MISSING and f.name not in data]
    if required:
        raise UserInputError(f"not a run record written by lora-pipeline: no {', '.join(map(repr, required))}",
                             path=path)
    values = {key: value for key, value in data.items() if key in known}
    for field_ in fields(RunRecord):
        if field_.name in values and not _has_type(values[field_.name], str(field_.type)):
            raise UserInputError(f"not a run record written by lora-pipeline: {field_.name} must be "
                                 f"{field_.type}, got {values[field_.name]!r}", path=path, key=field_.name)
    if values["status"] not in STATUSES:
        raise UserInputError(f"unknown run status {values['status']!r}; one of {', '.join(STATUSES)}", path=path,
                             key="status")
    return RunRecord(**values)


_JSON_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "bool": (bool,), "None": (type(None),),
                                            "list": (list,), "dict": (dict,)}


def _has_type(value: Any, annotation: str) -> bool:
    """``value`` fits ``annotation`` (a field's type as written: ``int | None``, ``list[dict[str, Any]]``)
    at its outer level: a hand-edited ``"pid": "abc"`` or ``"epochs": "x"`` is refused on reading instead
    of failing, or being rewritten, half-way through `watch` or `stop`."""
    outer = re.sub(r"\[.*\]", "", annotation)  # list[dict[str, Any]] | None -> list | None
    for alternative in (part.strip() for part in outer.split("|")):
        allowed = _JSON_TYPES.get(alternative)
        if allowed is None or (isinstance(value, allowed) and not (alternative == "int" and isinstance(value, bool))):
            return True
    return False
