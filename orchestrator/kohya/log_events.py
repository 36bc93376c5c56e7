"""The events of sd-scripts' console output (what ``log_grammar.LogParser`` emits).

Plain frozen records; ``LogEvent`` is their union. A failure's ``cause`` is one of ``FAILURE_CAUSES``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RunSummary:
    images_x_repeats: int | None
    batches_per_epoch: int | None
    epochs: int | None
    grad_accum: int | None
    total_steps: int | None


@dataclass(frozen=True, slots=True)
class EpochStarted:
    epoch: int
    total_epochs: int


@dataclass(frozen=True, slots=True)
class StepProgress:
    step: int
    total_steps: int
    epoch: int
    avr_loss: float | None
    s_per_it: float | None


@dataclass(frozen=True, slots=True)
class ValidationLoss:
    epoch: int
    loss: float


@dataclass(frozen=True, slots=True)
class CheckpointSaved:
    epoch: int
    path: str
    is_final: bool


@dataclass(frozen=True, slots=True)
class SamplesGenerated:
    epoch: int
    step: int


@dataclass(frozen=True, slots=True)
class StateSaved:
    epoch: int
    is_last: bool


@dataclass(frozen=True, slots=True)
class Finished:
    """``model saved.``: sd-scripts wrote the final network."""


FAILURE_CAUSES = ("cuda_oom", "nan_loss", "import_error", "traceback", "no_data", "killed_by_signal",
                  "stalled", "unknown")  # "stalled": the runner stopped a trainer that printed nothing
# When several failures show in one log (a chained traceback, OOM inside a traceback), the more
# specific cause wins; later failures of equal rank replace earlier ones (their message is the final one).
_CAUSE_RANK = {cause: rank for rank, cause in enumerate(reversed(FAILURE_CAUSES))}


@dataclass(frozen=True, slots=True)
class Failure:
    cause: str  # one of FAILURE_CAUSES
    message: str
    lines: tuple[str, ...] = ()

    def outranks(self, other: Failure | None) -> bool:
        return other is None or _CAUSE_RANK[self.cause] >= _CAUSE_RANK[other.cause]


LogEvent = (RunSummary | EpochStarted | StepProgress | ValidationLoss | CheckpointSaved | SamplesGenerated
            | StateSaved | Finished | Failure)
