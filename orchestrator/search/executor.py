"""The seam between the search and the GPU: what a trial asks for and what comes back.

``study.py`` only speaks to a :class:`TrialExecutor`. ``KohyaExecutor`` (``kohya_executor.py``) trains
with sd-scripts through the runner and scores with the evaluator; ``SimulatedExecutor``
(``simulator.py``) answers from a synthetic response surface, for tests and the benchmark.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from orchestrator.common.errors import PipelineError


class SearchAborted(PipelineError):
    """Raised by an executor for a problem that every trial would hit (no GPU, trainer not installed,
    disk full): the search records the trial as failed and stops instead of failing trial after trial."""


class ReportEpoch(Protocol):
    """Called once per evaluated (sample) epoch with that epoch's score and, when the trainer computed one
    for that epoch, its validation loss; returns True when the search wants the trainer stopped (the
    pruner decided the trial is a clear loser)."""

    def __call__(self, epoch: int, score: float, validation_loss: float | None = None) -> bool: ...


@dataclass(frozen=True)
class TrialRequest:
    number: int  # Optuna's trial number; also names the folder
    directory: Path  # the trial's own folder, never shared with another trial
    config: Mapping[str, Any]  # the trial's full preset (base deep-merged with the parameters)
    overrides: Mapping[str, Any]  # the flat kohya arguments this trial sets
    params: Mapping[str, Any]  # the sampled parameters as Optuna recorded them
    study_name: str = "search"
    # A run is trained in segments: it may pause at a sample epoch (its training state saved) and be taken up
    # again later from that state, with the same schedule and step count, on whichever GPU is free.
    until_epoch: int | None = None  # pause after this sample epoch instead of training to the last epoch
    resume_from: int | None = None  # continue from the state saved when the run paused at this epoch
    # A resumed segment scores the sample epochs after this one (None: after resume_from). Lower when the
    # run's state is newer than its last score: a trainer that died after saving the state of an epoch and
    # before that epoch was scored left its samples, scored when the run continues.
    scored_through: int | None = None

    @property
    def earlier_epochs(self) -> int:
        """The epochs an earlier segment scored and reported: this segment scores only the ones after."""
        if self.scored_through is not None:
            return self.scored_through
        return self.resume_from or 0

    @property
    def run_dir(self) -> Path:
        return self.directory / "run"


@dataclass
class TrialOutcome:
    epoch_scores: dict[int, float] = field(default_factory=dict)
    best_epoch: int | None = None
    checkpoint: str | None = None
    gpu_seconds: float = 0.0
    failure_cause: str | None = None  # None = the run finished or was stopped on request
    stopped_early: bool = False  # the report callback asked for a stop and the trainer stopped
    adopted: bool = False  # recorded from a trainer that outlived an earlier orchestrator
    # Stopped before its last epoch with its state saved here: it can continue. Also set beside a
    # ``failure_cause`` when the failed segment left a saved state (the search decides).
    paused_at: int | None = None
    segment_started: str | None = None  # when this segment's trainer started: names the segment (None: unknown)

    @property
    def best_score(self) -> float | None:
        if self.best_epoch is None:
            return None
        return self.epoch_scores.get(self.best_epoch)


class TrialExecutor(Protocol):
    def run(self, request: TrialRequest, report: ReportEpoch) -> TrialOutcome:
        """Train and score one trial; call ``report`` after each evaluated epoch and stop the trainer
        cleanly (keeping its outputs) when it returns True before the last epoch (a stop asked at the
        last epoch changes nothing: the run completes). Never raises for a training failure:
        a crash comes back as ``failure_cause``."""
        ...

    def adopt(self, request: TrialRequest, report: ReportEpoch) -> TrialOutcome | None:
        """Re-attach to a trial whose orchestrator died: if its trainer still runs (or has finished),
        follow it to the end and return its outcome; None when there is nothing to adopt."""
        ...

    def stop_orphan(self, request: TrialRequest) -> None:
        """Stop a trainer left running for a trial the study no longer wants (best effort)."""
        ...

    # Pause and resume. Every run saves its training state at each sample epoch (only the newest kept), so a
    # stop at a sample epoch -- asked by ``report`` or by ``until_epoch`` -- is a pause, not an end:
    # ``run`` with ``resume_from`` set continues it. ``epoch_scores`` of a resumed segment hold the epochs it
    # scored itself; the search keeps the whole curve.

    def state_bytes(self, request: TrialRequest) -> int:
        """Bytes the trial's saved training state takes on disk (0 when it has none)."""
        ...

    def discard_state(self, request: TrialRequest) -> None:
        """Delete the trial's saved training state (over the disk budget): the run can no longer continue."""
        ...

    def saved_epoch(self, request: TrialRequest) -> int | None:
        """The epoch of the trial's newest saved training state (None when it has none): where a run whose
        trainer died with its orchestrator can continue from."""
        ...


def best_epoch_of(scores: Mapping[int, float]) -> int | None:
    """The epoch evaluation's choice rule picks from bare totals (no intervals, no gates): the highest,
    ties to the earlier epoch. A real trial's best epoch is evaluation's own ``best.json`` choice."""
    from orchestrator.evaluate import EpochCandidate, choose_epoch

    choice = choose_epoch(EpochCandidate(epoch, float(total)) for epoch, total in scores.items())
    return None if choice is None else choice.epoch
