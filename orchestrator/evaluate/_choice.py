"""The one rule that picks an epoch, used by ``evaluate`` (best.json) and by the search's objective.

1. **Gates.** Epochs that fail a gate (memorisation, non-finite loss, collapse, broken samples) are
   not eligible while any epoch passes every gate. When none does, the pool is the epochs with the
   fewest failed gates (the least bad), and the reason says so.
2. **Noise.** The leader is the pool's highest total (ties: the earlier epoch). An epoch is *within
   the noise* of the leader when its interval reaches the leader's interval (``high >= leader.low``);
   without intervals that means an equal total.
3. **Earliest.** Among the epochs within the noise of the leader, the earliest is chosen: it cannot be
   told apart from the leader by these samples, and earlier checkpoints follow prompts better and
   over-fit less.

Example::

    >>> choice = choose_epoch([EpochCandidate(2, 0.60, 0.55, 0.66), EpochCandidate(4, 0.62, 0.58, 0.67),
    ...                        EpochCandidate(6, 0.70, 0.64, 0.75, failed_gates=("memorisation",))])
    >>> choice.epoch, choice.leader, choice.within_noise
    (2, 4, (2, 4))
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class EpochCandidate:
    """One epoch as the choice sees it: its total, the interval of the total, the gates it failed."""

    epoch: int
    total: float
    low: float | None = None  # None: no interval (a single number), low = high = total
    high: float | None = None
    failed_gates: tuple[str, ...] = ()

    @property
    def bounds(self) -> tuple[float, float]:
        low = self.total if self.low is None else self.low
        high = self.total if self.high is None else self.high
        return min(low, self.total), max(high, self.total)


@dataclass(frozen=True)
class EpochChoice:
    epoch: int
    leader: int  # the highest total among the pool
    pool: tuple[int, ...]  # the epochs the choice was made among
    within_noise: tuple[int, ...]  # the pool's epochs whose interval reaches the leader's
    clean: bool  # False: no epoch passed every gate, the least bad was taken
    excluded: dict[int, tuple[str, ...]]  # epochs left out by gates, with the gates they failed
    reason: str


def choose_epoch(candidates: Iterable[EpochCandidate]) -> EpochChoice | None:
    """The chosen epoch and why, or None without candidates. Pure; see the module docstring."""
    candidates = sorted(candidates, key=lambda c: c.epoch)
    if not candidates:
        return None
    clean = [c for c in candidates if not c.failed_gates]
    if clean:
        pool = clean
    else:
        fewest = min(len(c.failed_gates) for c in candidates)
        pool = [c for c in candidates if len(c.failed_gates) == fewest]
    excluded = {c.epoch: c.failed_gates for c in candidates if c not in pool}
    leader = max(pool, key=lambda c: (c.total, -c.epoch))
    leader_low = leader.bounds[0]
    within = [c for c in pool if c.bounds[1] >= leader_low]
    chosen = within[0]  # sorted by epoch: the earliest
    reason = _reason(chosen, leader, pool, within, excluded, bool(clean), candidates)
    return EpochChoice(epoch=chosen.epoch, leader=leader.epoch, pool=tuple(c.epoch for c in pool),
                       within_noise=tuple(c.epoch for c in within), clean=bool(clean), excluded=excluded,
                       reason=reason)


def _interval(candidate: EpochCandidate) -> str:
    low, high = candidate.bounds
    if low == high:
        return f"{candidate.total:.4f}"
    return f"{candidate.total:.4f} [{low:.4f}, {high:.4f}]"


def _reason(chosen: EpochCandidate, leader: EpochCandidate, pool: list[EpochCandidate],
            within: list[EpochCandidate], excluded: dict[int, tuple[str, ...]], clean: bool,
            candidates: list[EpochCandidate]) -> str:
    parts = []
    if excluded and clean:
        parts.append("Not eligible (failed a gate): " + "; ".join(
            f"epoch {epoch} ({', '.join(gates)})" for epoch, gates in sorted(excluded.items())) + ".")
    if not clean:
        failed = sorted({gate for c in candidates for gate in c.failed_gates})
        parts.append(f"No epoch passes every gate ({', '.join(failed)}): choosing the least bad, among the "
                     f"epochs that fail the fewest gates ({len(pool[0].failed_gates)}): "
                     f"{', '.join(str(c.epoch) for c in pool)}.")
    parts.append(f"Highest total: epoch {leader.epoch}, {_interval(leader)}.")
    others = [c for c in within if c.epoch != leader.epoch]
    ties = [c for c in pool if c.epoch != leader.epoch and c.total == leader.total]
    if ties:
        parts.append(f"Tied with epoch(s) {', '.join(str(c.epoch) for c in ties)} (same total): the earlier epoch "
                     "is preferred.")
    if chosen.epoch != leader.epoch:
        parts.append(f"Within its noise (interval reaching {leader.bounds[0]:.4f}): epochs "
                     f"{', '.join(str(c.epoch) for c in within)}; the earliest, epoch {chosen.epoch} "
                     f"({_interval(chosen)}), is chosen: these samples cannot tell it from the leader, and "
                     "earlier checkpoints follow prompts better and over-fit less.")
    elif others:
        parts.append(f"Epoch(s) {', '.join(str(c.epoch) for c in others)} are within its noise but later: "
                     "the earliest is chosen.")
    else:
        rest = [c for c in pool if c.epoch != leader.epoch]
        if rest:
            closest = max(rest, key=lambda c: c.bounds[1])
            parts.append(f"No other epoch is within its noise (the closest, epoch {closest.epoch}, reaches "
                         f"{closest.bounds[1]:.4f} < {leader.bounds[0]:.4f}).")
    return " ".join(parts)
