"""A study in one journal file that several processes on one machine share, with heartbeats.

Optuna's :class:`~optuna.storages.JournalStorage` with a :class:`~optuna.storages.journal.JournalFileBackend`
is made for several processes on one machine (SQLite is not: writers wait on one database lock, and
Optuna's documentation advises against it for parallel runs). Every process appends operations to the
log under the documented lock (:class:`~optuna.storages.journal.JournalFileOpenLock`, an ``O_EXCL`` lock
file that a killed holder leaves behind for at most its grace period) and replays the others' operations,
so trial numbers and ids agree across processes without a server.

The journal storage has no heartbeats, and the search's guarantee that a dead worker's trial is failed
and re-queued rests on them. :class:`HeartbeatJournalStorage` adds them, as ``RDBStorage`` has them: a
beat is the modification time of one small file per trial in ``JOURNAL.heartbeats/``, so beats do not
grow the journal that every process replays; a RUNNING trial whose file is older than ``grace_period``
seconds is stale, one without a file was never beaten and is left alone (as ``RDBStorage`` does).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
from optuna.trial import FrozenTrial, TrialState

from orchestrator.search.optuna_adapter import BaseHeartbeat, trial_id_of


@contextmanager
def journal_lock(path: Path) -> Iterator[None]:
    """Hold the lock every process takes to append to the journal at ``path``."""
    lock = JournalFileOpenLock(str(path))
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """A journal-file storage whose running trials beat (see the module docstring)."""

    def __init__(self, path: Path, *, heartbeat_interval: int | None = 60, grace_period: int = 600,
                 heartbeat_stale_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))
        self.path = path
        self.beats = path.with_name(f"{path.name}.heartbeats")
        self.beats.mkdir(exist_ok=True)
        self._interval = heartbeat_interval
        self._grace = grace_period
        self._callback = heartbeat_stale_trial_callback

    def _beat_file(self, trial_id: int) -> Path:
        return self.beats / f"trial_id_{trial_id}"

    def record_heartbeat(self, trial_id: int) -> None:
        beat = self._beat_file(trial_id)
        beat.touch()
        os.utime(beat)  # touch() leaves an existing file's time alone on some platforms

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:  # BaseHeartbeat's (optuna_adapter.py)
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            try:
                last_beat = self._beat_file(trial_id_of(trial)).stat().st_mtime
            except FileNotFoundError:
                continue
            if now - last_beat > self._grace:
                stale.append(trial_id_of(trial))
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self._callback
