"""Optuna objects for the search: sampler, pruner, storage with heartbeats, and the heartbeat thread.

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
* Pruning: besides the guide's ``median`` (and ``hyperband``, ``none``) the default is ``catchup``
  (``pruning.CatchUpPruner``): a median pruner at an early epoch compares learning *speed*, so it kills
  slow learners that would have peaked highest; the catch-up pruner stops a run only when neither the
  largest later gain of a finished run that was still rising there, nor the run's own saturating curve
  (its validation loss widening the bound), could bring it to the best finished score.
* Storages (``storage.py``, the one way to open a study): SQLite for one process, a journal file
  (``_journal.py``, with heartbeats added) for several processes on one machine (``--parallel-gpus``),
  PostgreSQL for several machines.
* ``RetryFailedTrialCallback`` and ``RDBStorage(failed_trial_callback=...)`` are deprecated aliases;
  we use ``RetryHeartbeatStaleTrialCallback`` and ``heartbeat_stale_trial_callback``.
"""

from __future__ import annotations

import warnings

import optuna

# One concept per private module (as Optuna keeps one sampler or pruner per module); this is their face.
from orchestrator.search._heartbeat import heartbeat, heartbeat_interval_of
from orchestrator.search._pruner_choice import PRUNER_WARMUP_EPOCHS, make_pruner
from orchestrator.search._sampling import STARTUP_TRIALS, TrainedStartupTPESampler, make_sampler

__all__ = ["PRUNER_WARMUP_EPOCHS", "STARTUP_TRIALS", "TrainedStartupTPESampler", "heartbeat",
           "heartbeat_interval_of", "make_pruner", "make_sampler", "quiet_optuna_notices"]


def quiet_optuna_notices() -> None:
    """Heartbeats, stale-trial retries and ask/tell with heartbeats are what the search is built on; Optuna
    flags them as experimental (and warns that heartbeats are "supposed to be used with optimize") on
    every call. Say it once in this docstring instead of on every trial."""
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
