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
* Pruning: besides the guide's ``median`` (and ``hyperband``, ``none``) the default is ``catchup``
  (``pruning.CatchUpPruner``): a median pruner at an early epoch compares learning *speed*, so it kills
  slow learners that would have peaked highest; the catch-up pruner stops a run only when even the
  largest later gain of any finished run could not bring it to the best finished score.
* ``RetryFailedTrialCallback`` and ``RDBStorage(failed_trial_callback=...)`` are deprecated aliases;
  we use ``RetryHeartbeatStaleTrialCallback`` and ``heartbeat_stale_trial_callback``.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import optuna

from orchestrator.common.errors import UserInputError

SamplerKind = Literal["tpe", "random"]
PrunerKind = Literal["catchup", "median", "hyperband", "none"]
PRUNER_KINDS: tuple[str, ...] = ("catchup", "median", "hyperband", "none")
DEFAULT_PRUNER: PrunerKind = "catchup"
STARTUP_TRIALS = 5  # the guide: 5 random trials before TPE models the space
PRUNER_WARMUP_EPOCHS = 4  # median/hyperband: early epochs measure learning speed, not the final score
MAX_RETRY = 2  # a trial whose worker died is retried at most twice


def quiet_optuna_notices() -> None:
    """Heartbeats, stale-trial retries and ask/tell with heartbeats are what the search is built on; Optuna
    flags them as experimental (and warns that heartbeats are "supposed to be used with optimize") on
    every call. Say it once in this docstring instead of on every trial."""
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def make_sampler(kind: SamplerKind, *, seed: int | None, warm_start_trials: int = 0) -> optuna.samplers.BaseSampler:
    """``warm_start_trials``: enqueued reference configs; TPE counts them among its start-up trials, so they
    are added to keep the guide's 5 *random* start-up trials."""
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "tpe":
        return optuna.samplers.TPESampler(
            multivariate=True, n_startup_trials=STARTUP_TRIALS + warm_start_trials, constant_liar=True, seed=seed
        )
    raise UserInputError(f"unknown sampler {kind!r}; use tpe or random", key="sampler")


def make_pruner(kind: PrunerKind, *, max_epochs: int) -> optuna.pruners.BasePruner:
    """``catchup``: stop a trial that can no longer reach the best finished score, from the first sample
    epoch on (the bound already allows for the largest later gain seen), once 5 trials have finished;
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


def default_storage_url(output: Path) -> str:
    return f"sqlite:///{output.resolve() / 'optuna_study.db'}"


def make_storage(url: str, *, heartbeat_interval: int = 60, grace_period: int = 600,
                 max_retry: int = MAX_RETRY) -> optuna.storages.BaseStorage:
    """An RDB storage (SQLite file or PostgreSQL) whose running trials send heartbeats; a trial whose
    worker stopped beating for ``grace_period`` seconds is failed and re-queued with its parameters.
    ``memory`` gives an in-process storage (benchmarks)."""
    if url == "memory":
        return optuna.storages.InMemoryStorage()
    if not url.startswith(("sqlite:///", "postgresql://", "postgresql+psycopg2://", "mysql")):
        raise UserInputError(f"unsupported storage URL {redact_url(url)!r}; use sqlite:///PATH or "
                             "postgresql://USER@HOST:PORT/DB", key="storage")
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # SQLite: wait for a lock instead of failing when the dashboard or a second process reads the file.
    engine_kwargs = {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    storage = optuna.storages.RDBStorage(
        url,
        engine_kwargs=engine_kwargs,
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry),
    )
    if url.startswith("sqlite"):
        _use_write_ahead_log(storage)
    return storage


def _use_write_ahead_log(storage: optuna.storages.RDBStorage) -> None:
    """SQLite in WAL mode with synchronous=NORMAL: a commit survives the death of any process (kill -9),
    only a power cut may lose the last ones. Optuna commits every suggest, report and attribute, and
    with a full fsync each (about 16 ms here) the bookkeeping alone took a second per trial."""
    from sqlalchemy import event

    def set_pragmas(connection: object, _record: object) -> None:
        cursor = connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(storage.engine, "connect", set_pragmas)
    storage.engine.dispose()  # connections opened while creating the tables get the pragmas too


def redact_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db`` (for logs and files)."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


def heartbeat_interval_of(storage: optuna.storages.BaseStorage) -> int | None:
    getter = getattr(storage, "get_heartbeat_interval", None)
    return getter() if getter else None


@contextmanager
def heartbeat(storage: optuna.storages.BaseStorage, trial_id: int) -> Iterator[None]:
    """Beat for ``trial_id`` while the block runs (Optuna does this only inside ``study.optimize``;
    the search drives trials with ask/tell and adopts trials of dead workers, so it beats itself)."""
    interval = heartbeat_interval_of(storage)
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
