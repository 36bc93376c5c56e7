"""The catch-up pruner: stop a run only when neither the study's curves nor its own can carry it to the best.

Early sample epochs of a LoRA run mostly measure how *fast* it learns (learning rate, alpha/dim,
accumulation), not how good it ends: a median pruner at epoch 4 kills slow learners that would have
peaked highest. This pruner asks instead whether the trial can still reach the best finished score, and
it takes two independent upper bounds on what the trial may still gain; it is pruned only when **both**
fall short (the rule is a heuristic, stated in full here):

1. **The study's curves.** The largest gain any finished trial made after its own epoch E, counting only
   gains made by the trial's last epoch (its ``last_epoch`` user attribute; without it every later gain
   counts). A finished curve is evidence of how much can still be gained after E only if it ran to its
   last epoch, or was still rising at E (its best epoch lies after E): a run that patience stopped after
   its peak (``stop_requested == PAST_PEAK`` or ``stopped_early``) gained nothing after E *because* it
   had already peaked, which says nothing about a run still climbing. Pruned trials are never evidence.
   When no finished curve is evidence at E, this bound says nothing and only the next one decides.
2. **The trial's own curve.** Learning curves saturate: the trial's points are fitted with an
   exponential approach to a plateau (a straight line is its limit), and the bound is the highest
   prediction at its last epoch, plus ``confidence`` standard errors, over every saturation rate its
   points do not reject (``curve_bound.py``). The score noise is estimated from the study's own curves
   (the residuals of their fits up to their peaks; never below ``noise_floor``). The trial's validation loss is a second witness
   of its pace: a rate that the loss's own curve admits is admitted too, so a loss that is still falling
   keeps a slowing score from being read as saturation.

A trial is never pruned on one sample epoch (it has no slope yet), before ``n_startup_trials`` trials
finished, or before epoch ``n_warmup_steps``.

Example::

    study = optuna.create_study(direction="maximize", pruner=CatchUpPruner(n_startup_trials=5))

Args:
    n_startup_trials: finished trials needed before anything is pruned.
    n_warmup_steps: no pruning at epochs below this.
    confidence: standard errors of the score noise the own-curve bound allows for.
    noise_floor: the smallest score noise assumed, whatever the curves suggest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import cast

import optuna
from optuna.trial import FrozenTrial, TrialState

from orchestrator.common.errors import UserInputError
from orchestrator.search.choices import PRUNER_KINDS, PrunerKind
from orchestrator.search.curve_bound import admitted_rates, reachable_score, residual_noise
from orchestrator.search.sampling import STARTUP_TRIALS
from orchestrator.search.vocabulary import (
    LAST_EPOCH_ATTR,
    PAST_PEAK,
    STOP_REQUESTED_ATTR,
    STOPPED_EARLY_ATTR,
    VALIDATION_LOSS_ATTR,
)


def largest_gain_after(curve: Mapping[int, float], epoch: int, last_epoch: int | None) -> float | None:
    """How much ``curve`` rose from ``epoch`` to its best score at or before ``last_epoch``; None when the
    curve has no score at ``epoch``."""
    if epoch not in curve:
        return None
    later = [score for e, score in curve.items() if e >= epoch and (last_epoch is None or e <= last_epoch)]
    return max(later) - curve[epoch]


def was_cut_by_patience(trial: FrozenTrial) -> bool:
    """The run was stopped after its peak by the search's patience rule (it is COMPLETE, but short)."""
    return trial.user_attrs.get(STOP_REQUESTED_ATTR) == PAST_PEAK or bool(trial.user_attrs.get(STOPPED_EARLY_ATTR))


def is_evidence_at(trial: FrozenTrial, epoch: int) -> bool:
    """Whether a finished trial's curve tells how much can still be gained after ``epoch``: it ran to its
    end, or it was still rising there (a curve cut by patience after its peak was cut *because* it stopped
    gaining)."""
    curve = trial.intermediate_values
    if epoch not in curve:
        return False
    if not was_cut_by_patience(trial):
        return True
    best_epoch = max(curve, key=lambda e: (curve[e], -e))
    return best_epoch > epoch


def rising_part(curve: Mapping[int, float], *, falling: bool = False) -> dict[int, float]:
    """``curve`` up to its best point (its lowest when ``falling``): the part a saturating model describes."""
    if not curve:
        return {}
    best = (min if falling else max)(curve, key=lambda e: curve[e])
    return {e: v for e, v in curve.items() if e <= best}


class CatchUpPruner(optuna.pruners.BasePruner):
    def __init__(self, *, n_startup_trials: int = 5, n_warmup_steps: int = 0, confidence: float = 2.0,
                 noise_floor: float = 0.003) -> None:
        self.n_startup_trials = n_startup_trials
        self.n_warmup_steps = n_warmup_steps
        self.confidence = confidence
        self.noise_floor = noise_floor

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        epoch = trial.last_step
        scores = trial.intermediate_values
        if epoch is None or epoch < self.n_warmup_steps or len(scores) < 2:
            return False
        finished = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                    if t.value is not None]
        if len(finished) < self.n_startup_trials:
            return False
        best = max(float(cast(float, t.value)) for t in finished)  # COMPLETE trials all have a value
        last_epoch = trial.user_attrs.get(LAST_EPOCH_ATTR)
        last_epoch = int(last_epoch) if last_epoch is not None else None
        level = max(scores[e] for e in scores if e <= epoch)

        gains = [gain for t in finished if is_evidence_at(t, epoch)
                 if (gain := largest_gain_after(t.intermediate_values, epoch, last_epoch)) is not None]
        study_reach = scores[epoch] + max(0.0, *gains) if gains else -math.inf

        fitted = residual_noise([rising_part(c) for c in (scores, *(t.intermediate_values for t in finished))])
        noise = max(self.noise_floor, fitted if fitted is not None else self.noise_floor)
        horizon = last_epoch if last_epoch is not None else max(max(t.intermediate_values) for t in finished)
        losses = _losses_of(trial)
        loss_noise = residual_noise([rising_part(c, falling=True) for c in (losses, *map(_losses_of, finished))])
        loss_rates = admitted_rates(losses, loss_noise, self.confidence) if len(losses) >= 3 and loss_noise else []
        own_reach = reachable_score(scores, horizon, noise, confidence=self.confidence, also_rates=loss_rates)
        return max(level, study_reach, own_reach) < best


def _losses_of(trial: FrozenTrial) -> dict[int, float]:
    return {int(e): float(v) for e, v in (trial.user_attrs.get(VALIDATION_LOSS_ATTR) or {}).items()}


# ------------------------------------------------------------------------------------------------ choice
PRUNER_WARMUP_EPOCHS = 4  # median/hyperband: early epochs measure learning speed, not the final score


def make_pruner(kind: PrunerKind, *, max_epochs: int) -> optuna.pruners.BasePruner:
    """``catchup``: stop a trial that can no longer reach the best finished score by the study's curves nor
    by its own (``pruning.CatchUpPruner``), from its second sample epoch on, once 5 trials have finished;
    ``median``: stop a trial whose score at an epoch is below the median of earlier trials at that
    epoch; ``hyperband``: successive halving over epochs (resource = epoch); ``none``: never stop."""
    if kind == "catchup":
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
