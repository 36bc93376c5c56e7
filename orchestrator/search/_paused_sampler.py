"""What the sampler sees of a paused run: a COMPLETE trial at its predicted final best.

A paused run stays RUNNING in Optuna (scheduled.py says why). TPE models COMPLETE and PRUNED trials and, with
``constant_liar``, counts RUNNING ones as the worst: so without this wrapper every paused run would push TPE
*away* from its region, and a search that pauses most runs after one rung would stay in the random
start-up phase. :class:`PausedAsCompleteSampler` hands the wrapped sampler a view of the study in which each
paused run is a COMPLETE trial whose value is the learning-curve model's prediction of its final best
(``predicted_final``, set by the scheduler at each decision; its best score so far until there is one).
Nothing is written: the storage still holds the paused run as RUNNING.
"""

from __future__ import annotations

import copy
from collections.abc import Container, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState


class _PausedAsComplete:
    """A read-only stand-in for a study: paused runs read as COMPLETE at their predicted value."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None,
                    use_cache: bool = False) -> list[FrozenTrial]:
        from orchestrator.search.scheduled import is_paused, predicted_value

        trials = []
        for trial in self._study._get_trials(deepcopy=deepcopy, states=None, use_cache=use_cache):
            if is_paused(trial) and trial.intermediate_values:
                trial = copy.copy(trial)
                trial.state = TrialState.COMPLETE
                trial.values = [predicted_value(trial)]
            if states is None or trial.state in states:
                trials.append(trial)
        return trials

    def get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()


class PausedAsCompleteSampler(optuna.samplers.BaseSampler):
    """Wraps the search's sampler (TPE, the prior's) so that it models paused runs at their prediction."""

    def __init__(self, base: optuna.samplers.BaseSampler) -> None:
        self.base = base

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
        return self.base.infer_relative_search_space(_PausedAsComplete(study), trial)  # type: ignore[arg-type]

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, Any]) -> dict[str, Any]:
        return self.base.sample_relative(_PausedAsComplete(study), trial, search_space)  # type: ignore[arg-type]

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: Any) -> Any:
        return self.base.sample_independent(_PausedAsComplete(study), trial, param_name,  # type: ignore[arg-type]
                                            param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.base.before_trial(_PausedAsComplete(study), trial)  # type: ignore[arg-type]

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()
