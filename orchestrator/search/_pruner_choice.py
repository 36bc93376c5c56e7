"""The pruner a search asks for by name (``--pruner``)."""

from __future__ import annotations

import optuna

from orchestrator.common.errors import UserInputError
from orchestrator.search._sampling import STARTUP_TRIALS
from orchestrator.search.choices import PRUNER_KINDS, PrunerKind

PRUNER_WARMUP_EPOCHS = 4  # median/hyperband: early epochs measure learning speed, not the final score


def make_pruner(kind: PrunerKind, *, max_epochs: int) -> optuna.pruners.BasePruner:
    """``catchup``: stop a trial that can no longer reach the best finished score by the study's curves nor
    by its own (``pruning.CatchUpPruner``), from its second sample epoch on, once 5 trials have finished;
    ``median``: stop a trial whose score at an epoch is below the median of earlier trials at that
    epoch; ``hyperband``: successive halving over epochs (resource = epoch); ``none``: never stop."""
    if kind == "catchup":
        from orchestrator.search.pruning import CatchUpPruner

        return CatchUpPruner(n_startup_trials=STARTUP_TRIALS)
    if kind == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=STARTUP_TRIALS, n_warmup_steps=PRUNER_WARMUP_EPOCHS
        )
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=PRUNER_WARMUP_EPOCHS, max_resource=max_epochs,
                                              reduction_factor=3)
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise UserInputError(f"unknown pruner {kind!r}; use {', '.join(PRUNER_KINDS)}", key="pruner")
