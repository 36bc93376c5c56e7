"""A study with a prior draws its first trials from the prior's good region, until it has outgrown it.

:class:`PriorShapedTPESampler` is :class:`~orchestrator.search.sampling.TrainedStartupTPESampler` whose
draws, while this study has fewer than ``outgrow_after`` trained trials, come from a TPE fitted on an
in-memory *shadow* study: the prior's trained trials (re-expressed with this space's distributions,
``prior.py``) together with this study's own finished trials. The shadow is never written anywhere and its
values never reach this study: a shadow trial only decides where this study's next trial lies; this study
then trains and scores it itself.

Scores of two characters are not on one scale (another character, another CLIP similarity), so the shadow
holds ranks, not scores: each trial's value is its quantile within its own study (the best 1.0), and a
trial of this study that a safety rule rejected is a PRUNED trial without value (TPE ranks it last).

Outgrown: once this study has ``outgrow_after`` trained trials (rejected ones do not count, as in the parent
class), the sampler is the parent's TPE over this study's own trials only: the model a study started from
nothing would have, so a misleading prior weighs on the first ``outgrow_after`` trials only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from orchestrator.search.optuna_adapter import set_trial_user_attr
from orchestrator.search.prior import PriorPlan
from orchestrator.search.sampling import STARTUP_TRIALS, TrainedStartupTPESampler
from orchestrator.search.vocabulary import FIXED_PARAMS_SYSTEM_ATTR, OUTCOME_ATTR, PRIOR_ATTR, REJECTED

OUTGROW_AFTER = 10  # trained trials of its own after which a study models only them (bench/search_prior.py)
EI_CANDIDATES = 96  # TPE's default is 24: more candidates, each draw closer to the best of the prior's region


def as_quantiles(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """``trials`` with each COMPLETE value replaced by its quantile among them (worst 0, best 1)."""
    values = sorted(t.value for t in trials if t.state == TrialState.COMPLETE and t.value is not None)
    span = max(len(values) - 1, 1)
    ranked = []
    for trial in trials:
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            quantile = values.index(trial.value) / span
            ranked.append(optuna.trial.create_trial(state=TrialState.COMPLETE, value=quantile, params=trial.params,
                                                    distributions=trial.distributions))
        else:
            # Pruned (TPE ranks it by its last epoch among the pruned) or rejected (no value: ranked last).
            ranked.append(optuna.trial.create_trial(state=TrialState.PRUNED, params=trial.params,
                                                    distributions=trial.distributions,
                                                    intermediate_values=trial.intermediate_values))
    return ranked


class PriorShapedTPESampler(TrainedStartupTPESampler):
    """Draws from the prior's and this study's ranks, then this study's own TPE (see the module docstring)."""

    def __init__(self, plan: PriorPlan, *, outgrow_after: int = OUTGROW_AFTER, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self._plan = plan
        self._outgrow_after = outgrow_after
        self._seed = seed
        self._prior_ranked = as_quantiles(plan.shadow)
        self._draw: dict[str, Any] | None = None

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        super().before_trial(study, trial)
        self._draw = None
        fixed = trial.system_attrs.get(FIXED_PARAMS_SYSTEM_ATTR) or {}
        if set(self._plan.distributions) <= set(fixed):
            return
        own = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
               if set(t.params) <= set(self._plan.distributions)]
        rejected = [t for t in own if t.user_attrs.get(OUTCOME_ATTR) == REJECTED]
        trained = [t for t in own if t.user_attrs.get(OUTCOME_ATTR) != REJECTED]
        if len(trained) >= self._outgrow_after:
            return  # outgrown: the parent's TPE on this study's own trials
        shadow = self._shadow_study(trial.number)
        shadow.add_trials(self._prior_ranked + as_quantiles(trained)
                          + [optuna.trial.create_trial(state=TrialState.PRUNED, params=t.params,
                                                       distributions=t.distributions) for t in rejected])
        shadow_trial = shadow.ask(self._plan.distributions)
        self._draw = {name: value for name, value in shadow_trial.params.items() if name not in fixed}
        if PRIOR_ATTR not in trial.user_attrs:
            set_trial_user_attr(study, trial, PRIOR_ATTR, {"kind": "draw", "study": self._plan.study_name})

    def _shadow_study(self, number: int) -> optuna.Study:
        seed = None if self._seed is None else self._seed * 1000 + number  # reproducible, one stream per trial
        sampler = optuna.samplers.TPESampler(multivariate=True, n_startup_trials=0, constant_liar=False, seed=seed,
                                             n_ei_candidates=EI_CANDIDATES)
        return optuna.create_study(direction="maximize", sampler=sampler)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, Any]) -> dict[str, Any]:
        if self._draw is not None:
            return {name: self._draw[name] for name in search_space if name in self._draw}
        return super().sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: Any) -> Any:
        if self._draw is not None and param_name in self._draw:
            return self._draw[param_name]
        return super().sample_independent(study, trial, param_name, param_distribution)


def make_prior_sampler(plan: PriorPlan, *, seed: int | None, warm_start_trials: int = 0,
                       outgrow_after: int | None = None) -> PriorShapedTPESampler:
    """The guide's TPE settings (``sampling.make_sampler``) once outgrown; before, draws shaped by ``plan``
    (``outgrow_after`` defaults to :data:`OUTGROW_AFTER`; the warm-start presets come on top)."""
    outgrow_after = OUTGROW_AFTER if outgrow_after is None else outgrow_after
    return PriorShapedTPESampler(plan, outgrow_after=outgrow_after + warm_start_trials,
                                 n_startup_trials=STARTUP_TRIALS + warm_start_trials, multivariate=True,
                                 constant_liar=True, seed=seed)
