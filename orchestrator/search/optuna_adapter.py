"""Everything the search needs from Optuna beyond its public API, in one place.

The search drives trials with ask/tell, beats for them itself, adds heartbeats to the journal storage and
counts TPE's start-up trials its own way; each of these reaches under Optuna's public surface:

* ``optuna.storages._heartbeat.BaseHeartbeat`` (not re-exported), whose abstract ``_get_stale_trial_ids``
  ``fail_stale_trials`` calls (``_journal.HeartbeatJournalStorage`` implements it);
* ``FrozenTrial._trial_id`` and ``Study._storage`` (a sampler that writes a trial attribute in
  ``before_trial`` has only the frozen trial and the study);
* ``BaseHeartbeat._get_stale_trial_ids`` and ``Study._study_id`` (the scheduler fails stale trials itself,
  sparing a paused run that has no trainer to beat for it);
* ``TPESampler._n_startup_trials`` (``sampling.TrainedStartupTPESampler`` decides the start-up phase);
* Optuna's system attributes ``fixed_params``, ``failed_trial`` and ``retry_history`` (``vocabulary.py``).

``tests/search/test_optuna_adapter.py`` fails when Optuna moves any of them, and ``pyproject.toml`` bounds
Optuna below its next major version. Heartbeats and stale-trial retries are what the search is built on;
Optuna flags them experimental on every call, so :func:`quiet_optuna_notices` says it once here instead.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import optuna
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial

__all__ = ["BaseHeartbeat", "heartbeat", "heartbeat_interval_of", "quiet_optuna_notices", "set_trial_user_attr",
           "stale_trial_ids", "startup_trials_of", "storage_of", "trial_id_of"]

log = logging.getLogger(__name__)


def trial_id_of(trial: FrozenTrial) -> int:
    """The storage's id of ``trial`` (its number is per study, the id per storage)."""
    return int(trial._trial_id)


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    return study._storage


def stale_trial_ids(study: optuna.Study) -> list[int]:
    """The storage ids of the study's RUNNING trials whose heartbeat lapsed (none without heartbeats)."""
    storage = storage_of(study)
    if not isinstance(storage, BaseHeartbeat) or not storage.get_heartbeat_interval():
        return []
    return list(storage._get_stale_trial_ids(study._study_id))


def set_trial_user_attr(study: optuna.Study, trial: FrozenTrial, key: str, value: Any) -> None:
    """Set a user attribute of a trial a sampler holds only frozen (``before_trial``)."""
    storage_of(study).set_trial_user_attr(trial_id_of(trial), key, value)


def startup_trials_of(sampler: optuna.samplers.TPESampler) -> int:
    """How many trials TPE samples at random before it models the space."""
    return int(sampler._n_startup_trials)


def quiet_optuna_notices() -> None:
    """Heartbeats, stale-trial retries and ask/tell with heartbeats are what the search is built on; Optuna
    flags them as experimental (and warns that heartbeats are "supposed to be used with optimize") on
    every call. Say it once in this docstring instead of on every trial."""
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def heartbeat_interval_of(storage: optuna.storages.BaseStorage) -> int | None:
    getter = getattr(storage, "get_heartbeat_interval", None)  # RDB, journal and test doubles beat
    return getter() if getter else None


@contextmanager
def heartbeat(storage: optuna.storages.BaseStorage, trial_id: int) -> Iterator[None]:
    """Beat for ``trial_id`` while the block runs (Optuna does this only inside ``study.optimize``;
    the search drives trials with ask/tell and adopts trials of dead workers, so it beats itself)."""
    interval = heartbeat_interval_of(storage)
    if not interval:
        yield
        return
    record = storage.record_heartbeat  # type: ignore[attr-defined]  # every storage with an interval beats
    stop = threading.Event()

    def beat() -> None:
        failing = False
        while True:
            try:
                record(trial_id)
                failing = False
            except Exception as error:  # noqa: BLE001 - a database hiccup must not end a trial's beats
                if not failing:
                    log.warning("heartbeat of trial id %d failed (%s: %s); retrying every %s s", trial_id,
                                type(error).__name__, error, interval)
                failing = True
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
