"""The best epoch: the argmax of the weighted total, with a written reason and the runner-up.

Ties go to the earlier epoch (less training, less risk of over-fitting, for the same score). Epochs
without a checkpoint on disk are not eligible when ``require_checkpoint`` is set, since a best epoch
that cannot be loaded is of no use; epochs whose total is None (a metric missing) are never eligible.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.evaluate._config import METRIC_TITLES, METRICS
from orchestrator.evaluate._metrics import EpochScore


@dataclass(frozen=True)
class BestChoice:
    epoch: int
    total: float
    checkpoint: str | None
    reason: str
    runner_up: int | None
    runner_up_total: float | None
    eligible: tuple[int, ...]


def choose_best(scores: dict[int, EpochScore], weights: dict[str, float], *,
                require_checkpoint: bool = True) -> BestChoice | None:
    """The best-scoring eligible epoch, or None when no epoch has a total."""
    scored = {e: s for e, s in scores.items() if s.total is not None}
    eligible = {e: s for e, s in scored.items() if s.checkpoint is not None} if require_checkpoint else scored
    note = ""
    if not eligible and scored:
        eligible = scored
        note = " No scored epoch has a checkpoint on disk, so the choice is among all scored epochs."
    if not eligible:
        return None
    ranking = sorted(eligible.values(), key=lambda s: (-(s.total or 0.0), s.epoch))
    best = ranking[0]
    runner_up = ranking[1] if len(ranking) > 1 else None
    parts = " + ".join(f"{weights[m]:g} x {METRIC_TITLES[m]} {best.metrics[m]:.3f}" for m in METRICS)
    reason = f"highest weighted total {best.total:.4f} = {parts}."
    if runner_up is not None:
        margin = (best.total or 0.0) - (runner_up.total or 0.0)
        gaps = sorted(METRICS, key=lambda m: -abs(weights[m] * ((best.metrics[m] or 0) - (runner_up.metrics[m] or 0))))
        lead = gaps[0]
        reason += (f" Runner-up epoch {runner_up.epoch} ({runner_up.total:.4f}, margin {margin:.4f}); the largest "
                   f"weighted difference is {METRIC_TITLES[lead]} ({best.metrics[lead]:.3f} vs "
                   f"{runner_up.metrics[lead]:.3f}).")
        if margin == 0:
            reason += " Tied: the earlier epoch is preferred."
    if best.warnings:
        reason += f" Warnings for this epoch: {len(best.warnings)} (see scores.json)."
    return BestChoice(epoch=best.epoch, total=float(best.total or 0.0), checkpoint=best.checkpoint,
                      reason=reason + note, runner_up=runner_up.epoch if runner_up else None,
                      runner_up_total=runner_up.total if runner_up else None,
                      eligible=tuple(sorted(eligible)))
