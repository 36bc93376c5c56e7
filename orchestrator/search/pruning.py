"""The catch-up pruner: stop a run only when it can no longer reach the best finished score.

Early sample epochs of a LoRA run mostly measure how *fast* it learns (learning rate, alpha/dim,
accumulation), not how good it ends: a median pruner at epoch 4 kills slow learners that would have
peaked highest, and TPE then learns "slow = bad". This pruner asks the question that matters: the
trial's score at epoch E plus the largest gain any finished trial made after its own epoch E (up to
its best epoch within the trial's own last epoch) — can that still reach the best finished score?
If not, the trial is a clear loser. The bound comes from the study's own curves, so it widens for slow
learners as soon as one finished.

A gain that a finished 24-epoch run made at epoch 22 is one a 16-epoch trial can never make: the bound
only counts gains up to the trial's last epoch, read from its ``last_epoch`` user attribute (the search
sets it from the trial's config; without it every later gain counts).
"""

from __future__ import annotations

from collections.abc import Mapping

import optuna
from optuna.trial import FrozenTrial, TrialState

LAST_EPOCH_ATTR = "last_epoch"


def largest_gain_after(curve: Mapping[int, float], epoch: int, last_epoch: int | None) -> float | None:
    """How much ``curve`` rose from ``epoch`` to its best score at or before ``last_epoch``; None when the
    curve has no score at ``epoch``."""
    if epoch not in curve:
        return None
    later = [score for e, score in curve.items() if e >= epoch and (last_epoch is None or e <= last_epoch)]
    return max(later) - curve[epoch]


class CatchUpPruner(optuna.pruners.BasePruner):
    def __init__(self, *, n_startup_trials: int = 5, n_warmup_steps: int = 0) -> None:
        self.n_startup_trials = n_startup_trials  # finished trials needed before anything is pruned
        self.n_warmup_steps = n_warmup_steps  # no pruning at epochs below this

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        epoch = trial.last_step
        if epoch is None or epoch < self.n_warmup_steps:
            return False
        finished = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                    if t.value is not None]
        if len(finished) < self.n_startup_trials:
            return False
        last_epoch = trial.user_attrs.get(LAST_EPOCH_ATTR)
        last_epoch = int(last_epoch) if last_epoch is not None else None
        gains = [gain for t in finished
                 if (gain := largest_gain_after(t.intermediate_values, epoch, last_epoch)) is not None]
        if not gains:
            return False  # no finished run got this far: nothing to compare with
        best = max(t.value for t in finished)  # type: ignore[type-var]
        scores = trial.intermediate_values
        reachable = max(max(scores[e] for e in scores if e <= epoch), scores[epoch] + max(0.0, *gains))
        return reachable < best
