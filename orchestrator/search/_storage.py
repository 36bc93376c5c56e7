"""Where a study lives: SQLite for one process, a journal file for several on one machine, PostgreSQL
for several machines; every one with heartbeats and the retry of a trial whose worker died."""

from __future__ import annotations

from pathlib import Path

import optuna

from orchestrator.common.errors import UserInputError
from orchestrator.search._storage_url import normalize_storage_url, opening_storage, redact_url

MAX_RETRY = 2  # a trial whose worker died is retried at most twice


SQLITE_FILE = "optuna_study.db"


def default_storage_url(output: Path, *, parallel: bool = False) -> str:
    """The study storage of a search folder: the one already there (a resume finds its study), else a
    journal file when several processes will share it (``--parallel-gpus``), else SQLite."""
    from orchestrator.search._journal import JOURNAL_FILE, journal_url

    output = output.resolve()
    if (output / JOURNAL_FILE).is_file() or (parallel and not (output / SQLITE_FILE).is_file()):
        return journal_url(output / JOURNAL_FILE)
    return f"sqlite:///{output / SQLITE_FILE}"


def make_storage(url: str, *, heartbeat_interval: int = 60, grace_period: int = 600,
                 max_retry: int = MAX_RETRY) -> optuna.storages.BaseStorage:
    """A storage whose running trials send heartbeats: a journal file (``journal:///PATH``, several
    processes on one machine), SQLite or PostgreSQL; a trial whose worker stopped beating for
    ``grace_period`` seconds is failed and re-queued with its parameters. ``memory`` gives an
    in-process storage (benchmarks)."""
    from orchestrator.search._journal import JOURNAL_SCHEME, HeartbeatJournalStorage, journal_path

    if url == "memory":
        return optuna.storages.InMemoryStorage()
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    if url.startswith(JOURNAL_SCHEME):
        path = journal_path(url)
        if path.is_dir():
            raise UserInputError("the study storage is a folder, not a journal file", path=path, key="storage")
        return HeartbeatJournalStorage(path, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                                       heartbeat_stale_trial_callback=retry)
    if not url.startswith(("sqlite:///", "postgresql://", "postgresql+psycopg2://", "mysql")):
        raise UserInputError(f"unsupported storage URL {redact_url(url)!r}; use journal:///PATH, sqlite:///PATH "
                             "or postgresql://USER@HOST:PORT/DB", key="storage")
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    driver_url = normalize_storage_url(url)
    # SQLite: wait for a lock instead of failing when the dashboard or a second process reads the file.
    engine_kwargs = {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    storage = opening_storage(url, lambda: optuna.storages.RDBStorage(
        driver_url,
        engine_kwargs=engine_kwargs,
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period,
        heartbeat_stale_trial_callback=retry,
    ))
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
