"""The catch-up pruner: stop a run only when it can no longer reach the best finished score.

Early sample epochs of a LoRA run mostly measure how *fast* it learns (learning rate, alpha/dim,
accumulation), not how good it ends: a median pruner at epoch 4 kills slow learners that would have
peaked highest, and TPE then learns "slow = bad". This pruner asks the question that matters: the
trial's score at epoch E plus the largest gain any finished trial made after its own epoch E (up to
its best epoch) — can that still reach the best finished score? If not, the trial is a clear loser.
The bound comes from the study's own curves, so it widens for slow learners as soon as one finished.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState


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
        gains = [t.value - t.intermediate_values[epoch] for t in finished if epoch in t.intermediate_values]
        if not gains:
            return False  # no finished run got this far: nothing to compare with
        best = max(t.value for t in finished)  # type: ignore[type-var]
        scores = trial.intermediate_values
        reachable = max(max(scores[e] for e in scores if e <= epoch), scores[epoch] + max(0.0, *gains))
        return reachable < best
