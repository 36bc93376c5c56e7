"""Trials asked but never claimed: the moment between ``study.ask()`` and a worker's claim.

A trial is RUNNING from ``ask`` on, but it carries its worker's identity (the ``worker`` user attribute)
and its heartbeat only a moment later. A worker killed inside that moment leaves a RUNNING trial that no
heartbeat will ever declare stale (Optuna judges staleness from beats, and this trial has none) and that no
resume can recognise as its own. Such a trial is not counted towards the requested total, and once it has
been unclaimed for longer than any claim takes, it is failed (and re-queued when it already had parameters,
as a popped retry has).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from optuna.trial import FrozenTrial, TrialState

from orchestrator.search.vocabulary import WORKER_ATTR

# A claim follows ask within milliseconds, even over a slow database link; a minute is far past any of them.
CLAIM_SECONDS = 60.0


def is_unclaimed(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.RUNNING and not trial.user_attrs.get(WORKER_ATTR)


def unclaimed_age(trial: FrozenTrial, now: dt.datetime | None = None) -> float:
    """Seconds since ``ask`` made the trial RUNNING (Optuna stores local, naive times)."""
    if trial.datetime_start is None:
        return float("inf")
    return ((now or dt.datetime.now()) - trial.datetime_start).total_seconds()


def abandoned(trials: Sequence[FrozenTrial], *, claim_seconds: float = CLAIM_SECONDS,
              now: dt.datetime | None = None) -> list[FrozenTrial]:
    """The unclaimed trials whose claim can no longer come."""
    return [t for t in trials if is_unclaimed(t) and unclaimed_age(t, now) >= claim_seconds]
