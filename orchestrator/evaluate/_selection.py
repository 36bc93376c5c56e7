"""The best epoch of a run: the shared choice rule (``_choice.py``) over its scored epochs, with the
weighted breakdown of the chosen total and the runner-up.

Epochs without a checkpoint on disk are not eligible when ``require_checkpoint`` is set, since a best
epoch that cannot be loaded is of no use; epochs whose total is None (a metric missing) are never
eligible. Gates and the noise rule are the choice's (see ``choose_epoch``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.evaluate._choice import EpochCandidate, choose_epoch
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
    leader: int | None = None  # the highest total among the eligible epochs
    within_noise: tuple[int, ...] = ()
    clean: bool = True  # False: every epoch failed a gate, the least bad was chosen
    excluded: dict[int, tuple[str, ...]] = field(default_factory=dict)


def candidate_of(score: EpochScore) -> EpochCandidate:
    low, high = score.interval if score.interval is not None else (None, None)
    return EpochCandidate(score.epoch, float(score.total or 0.0), low, high, score.failed_gates)


def choose_best(scores: dict[int, EpochScore], weights: dict[str, float], *,
                require_checkpoint: bool = True) -> BestChoice | None:
    """The chosen epoch (gates, then the earliest within the noise of the best), or None when no epoch
    has a total."""
    scored = {e: s for e, s in scores.items() if s.total is not None}
    eligible = {e: s for e, s in scored.items() if s.checkpoint is not None} if require_checkpoint else scored
    note = ""
    if not eligible and scored:
        eligible = scored
        note = " No scored epoch has a checkpoint on disk, so the choice is among all scored epochs."
    choice = choose_epoch(candidate_of(s) for s in eligible.values())
    if choice is None:
        return None
    best = eligible[choice.epoch]
    pool = sorted((eligible[e] for e in choice.pool if e != best.epoch), key=lambda s: (-(s.total or 0.0), s.epoch))
    runner_up = pool[0] if pool else None
    parts = " + ".join(f"{weights[m]:g} x {METRIC_TITLES[m]} {best.metrics[m]:.3f}" for m in METRICS)
    reason = f"{choice.reason} Chosen epoch {best.epoch}: total {best.total:.4f} = {parts}."
    if runner_up is not None:
        gaps = sorted(METRICS, key=lambda m: -abs(weights[m] * ((best.metrics[m] or 0) - (runner_up.metrics[m] or 0))))
        lead = gaps[0]
        reason += (f" Runner-up epoch {runner_up.epoch} ({runner_up.total:.4f}, margin "
                   f"{(best.total or 0.0) - (runner_up.total or 0.0):+.4f}); the largest weighted difference is "
                   f"{METRIC_TITLES[lead]} ({best.metrics[lead]:.3f} vs {runner_up.metrics[lead]:.3f}).")
    if best.warnings:
        reason += f" Warnings for this epoch: {len(best.warnings)} (see scores.json)."
    return BestChoice(epoch=best.epoch, total=float(best.total or 0.0), checkpoint=best.checkpoint,
                      reason=reason + note, runner_up=runner_up.epoch if runner_up else None,
                      runner_up_total=runner_up.total if runner_up else None,
                      eligible=tuple(sorted(eligible)), leader=choice.leader, within_noise=choice.within_noise,
                      clean=choice.clean, excluded=dict(choice.excluded))
