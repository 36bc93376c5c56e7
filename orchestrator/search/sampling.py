"""The search's sampler and pruner, and what Optuna 5 changed of the guide's settings.

Optuna 5.0 and what the guide asked for (guide: ``TPESampler(multivariate=True, n_startup_trials=5)``):

* ``multivariate`` now defaults to ``None`` (= True for one objective). We still pass ``True``: the
  guide's parameters interact (alpha with dim, warmup with learning rate) and an explicit value keeps
  the behaviour if the default changes again.
* ``n_startup_trials`` still defaults to 10; we pass 5 as the guide says.
* ``constant_liar`` now defaults to True (it was False): with several workers, running trials are
  penalised so that two GPUs do not try the same region. We keep it on and say so.
* ``consider_prior``, ``prior_weight``, ``consider_magic_clip``, ``consider_endpoints``, ``gamma``,
  ``weights`` and ``warn_independent_sampling`` are deprecated (removal planned for 6.0); we set none
  of them, so no FutureWarning is raised and Optuna's current defaults apply.
* ``constraints_func`` is deprecated in 5.0; the safety rules are given per trial with
  ``Trial.set_constraint`` instead, which TPE reads to rank infeasible trials below feasible ones.
* TPE counts every COMPLETE and PRUNED trial toward ``n_startup_trials``, rejected ones too (they are
  told PRUNED), so with a third of the draws breaking a rule it would model from ~3 trained points.
  :class:`TrainedStartupTPESampler` counts only trained trials (see its docstring for why).
* Pruning (``pruning.py``, :func:`~pruning.make_pruner`): besides the guide's ``median`` (and
  ``hyperband``, ``none``) the default is ``catchup`` (:class:`~pruning.CatchUpPruner`): a median pruner
  at an early epoch compares learning *speed*, so it kills slow learners that would have peaked highest; the catch-up pruner stops a run only when neither the
  largest later gain of a finished run that was still rising there, nor the run's own saturating curve
  (its validation loss widening the bound), could bring it to the best finished score.
* Storages (``storage.py``, the one way to open a study): SQLite for one process, a journal file
  (``_journal.py``, with heartbeats added) for several processes on one machine (``--parallel-gpus``),
  PostgreSQL for several machines.
* ``RetryFailedTrialCallback`` and ``RDBStorage(failed_trial_callback=...)`` are deprecated aliases;
  we use ``RetryHeartbeatStaleTrialCallback`` and ``heartbeat_stale_trial_callback``.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from orchestrator.common.errors import UserInputError
from orchestrator.search.choices import SamplerKind
from orchestrator.search.optuna_adapter import startup_trials_of
from orchestrator.search.vocabulary import OUTCOME_ATTR, REJECTED

STARTUP_TRIALS = 5  # the guide: 5 random trials before TPE models the space


def make_sampler(kind: SamplerKind, *, seed: int | None, warm_start_trials: int = 0) -> optuna.samplers.BaseSampler:
    """``warm_start_trials``: enqueued reference configs; TPE counts them among its start-up trials, so they
    are added to keep the guide's 5 *random* start-up trials."""
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "tpe":
        return TrainedStartupTPESampler(
            multivariate=True, n_startup_trials=STARTUP_TRIALS + warm_start_trials, constant_liar=True, seed=seed
        )
    raise UserInputError(f"unknown sampler {kind!r}; use tpe or random", key="sampler")


class TrainedStartupTPESampler(optuna.samplers.TPESampler):
    """TPE whose random start-up phase lasts until ``n_startup_trials`` trials have *trained*.

    A trial rejected by a safety rule is told PRUNED with its constraint values (and
    ``user_attrs[OUTCOME_ATTR] = "rejected"``). That is the state Optuna 5 supports best for it: TPE
    ranks such a trial as infeasible (below every feasible one), so the model learns to avoid the
    region, and the dashboard shows it as infeasible with its reason. But TPE's own start-up count
    (``study._get_trials(states=(COMPLETE, PRUNED))`` in ``TPESampler.sample_relative`` and
    ``sample_independent``) takes rejected trials as start-up points. Telling them FAIL instead would
    hide them from the model and the dashboard's feasibility view, and ``constraints_func`` is
    deprecated, so this sampler keeps the PRUNED state and decides the start-up phase itself: while
    fewer than ``n_startup_trials`` COMPLETE/PRUNED trials are not rejections, it samples at random
    (its own :class:`~optuna.samplers.RandomSampler`, seeded like TPE); afterwards TPE as usual,
    rejections included as infeasible points.

    The phase is decided once per trial in :meth:`before_trial` (one read of the study per ask). TPE's
    own check still runs after it and always passes then (trained trials are COMPLETE or PRUNED).
    """

    def __init__(self, *, n_startup_trials: int = STARTUP_TRIALS, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(n_startup_trials=n_startup_trials, seed=seed, **kwargs)
        self._startup_sampler = optuna.samplers.RandomSampler(seed=seed)
        self._in_startup = True

    def reseed_rng(self) -> None:
        super().reseed_rng()
        self._startup_sampler.reseed_rng()

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        trained = sum(1 for t in finished if t.user_attrs.get(OUTCOME_ATTR) != REJECTED)
        self._in_startup = trained < startup_trials_of(self)
        super().before_trial(study, trial)

    def sample_relative(self, study: optuna.Study, trial: optuna.trial.FrozenTrial,
                        search_space: dict[str, Any]) -> dict[str, Any]:
        if self._in_startup:
            return {}
        return super().sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: optuna.trial.FrozenTrial, param_name: str,
                           param_distribution: Any) -> Any:
        if self._in_startup:
            return self._startup_sampler.sample_independent(study, trial, param_name, param_distribution)
        return super().sample_independent(study, trial, param_name, param_distribution)
