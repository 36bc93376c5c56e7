"""The one way to open, create and load a study: SQLite for one process, a journal file for several on one
machine (``--parallel-gpus``), PostgreSQL for several machines; every one with heartbeats and the retry of
a trial whose worker died.

Every reader and writer of a study (the search loop, its workers, ``search analyze``, ``--prior``, the
dashboard command) goes through this module, so each storage kind is readable everywhere, a password never
reaches a message, and every failure of the outside world (a server that does not answer, a file that is
no database, a damaged journal) becomes one :class:`UserInputError` naming the file or the redacted URL.

SQLAlchemy 2 maps a bare ``postgresql://`` to the ``psycopg`` (3) driver, which is not what we install;
the documented URL must work, so a bare scheme gets the installed driver.

A journal whose last line was cut in half (a power cut while a worker appended) is repaired when opened:
Optuna skips a last line without its newline, but the next append glues onto it and every later replay
fails with "malformed JSON". The torn bytes are kept aside in ``JOURNAL.torn-TIMESTAMP`` and a warning
says so; damage anywhere before the last line is refused, not repaired.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna

from orchestrator.common.errors import UserInputError, one_line
from orchestrator.search._journal import HeartbeatJournalStorage, journal_lock

MAX_RETRY = 2  # a trial whose worker died is retried at most twice
SQLITE_FILE = "optuna_study.db"
SQLITE_SCHEME = "sqlite:///"
JOURNAL_FILE = "optuna_journal.log"
JOURNAL_SCHEME = "journal:///"
MEMORY = "memory"  # an in-process storage (benchmarks)
TORN_SUFFIX = ".torn-"
# The PostgreSQL drivers SQLAlchemy knows, in the order we prefer them.
_POSTGRES_DRIVERS = (("psycopg2", "psycopg2"), ("psycopg", "psycopg"), ("pg8000", "pg8000"))
_SQLITE_MAGIC = b"SQLite format 3\x00"
_RDB_SCHEMES = (SQLITE_SCHEME, "postgresql://", "postgresql+psycopg2://", "mysql")


# ------------------------------------------------------------------------------------------------ URLs
def journal_path(url: str) -> Path:
    """``journal:////abs/study.log`` -> ``/abs/study.log`` (three slashes, then the path, as sqlite:///)."""
    return Path(url.removeprefix(JOURNAL_SCHEME))


def journal_url(path: Path) -> str:
    return f"{JOURNAL_SCHEME}{path.resolve()}"


def sqlite_url(path: Path) -> str:
    return f"{SQLITE_SCHEME}{path.resolve()}"


def file_of(url: str) -> Path | None:
    """The file a journal or SQLite URL names (None for a server or ``memory``)."""
    if url.startswith(JOURNAL_SCHEME):
        return journal_path(url)
    if url.startswith(SQLITE_SCHEME) and url.removeprefix(SQLITE_SCHEME) not in ("", ":memory:"):
        return Path(url.removeprefix(SQLITE_SCHEME))
    return None


def redact_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db`` (for logs and files)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if url.startswith(JOURNAL_SCHEME) or url == MEMORY:
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL at all: show it unless it might carry a password
        return url if "@" not in url else "<storage URL hidden: not a valid URL>"


def describe_storage(url: str) -> str:
    """How a message names a storage: the file of a journal or SQLite study, else the redacted URL."""
    path = file_of(url)
    return str(path) if path is not None else redact_url(url)


def study_url_in(folder: Path) -> str | None:
    """The storage of the study a search folder already holds (journal or SQLite), None when it has none."""
    folder = folder.resolve()
    if (folder / JOURNAL_FILE).is_file():
        return journal_url(folder / JOURNAL_FILE)
    if (folder / SQLITE_FILE).is_file():
        return sqlite_url(folder / SQLITE_FILE)
    return None


def default_storage_url(output: Path, *, parallel: bool = False) -> str:
    """The study storage of a search folder: the one already there (a resume finds its study), else a
    journal file when several processes will share it (``--parallel-gpus``), else SQLite."""
    output = output.resolve()
    if existing := study_url_in(output):
        return existing
    return journal_url(output / JOURNAL_FILE) if parallel else sqlite_url(output / SQLITE_FILE)


def normalize_storage_url(url: str) -> str:
    """``url`` with an installed driver named; refuses a URL SQLAlchemy cannot parse or a bad SQLite file."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as error:
        raise UserInputError(f"not a database URL {redact_url(url)!r} ({error})", key="storage",
                             hint="use sqlite:///PATH or postgresql://USER@HOST:PORT/DB") from None
    if parsed.drivername == "postgresql":
        driver = next((name for name, module in _POSTGRES_DRIVERS if importlib.util.find_spec(module)), None)
        if driver is None:
            raise UserInputError("no PostgreSQL driver is installed (pip install psycopg2-binary)", key="storage")
        return parsed.set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        _check_sqlite_file(Path(parsed.database))
    return url


def _check_sqlite_file(path: Path) -> None:
    if path.is_dir():
        raise UserInputError("the study storage is a folder, not a SQLite file", path=path, key="storage")
    if path.is_file() and path.stat().st_size > 0:
        with open(path, "rb") as handle:
            if handle.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC:
                raise UserInputError("not a SQLite database; refusing to open it as the study storage",
                                     path=path, key="storage", hint="give a new file name or the study's .db")


# ------------------------------------------------------------------------------------------------ errors
@contextmanager
def storage_errors(url: str, *, key: str = "storage") -> Iterator[None]:
    """Turn a failure of the storage (database, server, journal file) inside the block into one
    :class:`UserInputError` naming the file or the redacted URL; our own errors pass unchanged."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except UserInputError:
        raise
    except (SQLAlchemyError, OSError, ValueError) as error:  # JSONDecodeError is a ValueError
        detail = one_line(getattr(error, "orig", None) or error)
        path = file_of(url)
        where = "" if path is not None else f" {redact_url(url)}"
        hint = ("the file is damaged: restore it from a backup or start a new study in a new folder"
                if path is not None else "check that the server is up and the URL, user and database are right")
        raise UserInputError(f"cannot open the study storage{where}: {type(error).__name__}: {detail}",
                             path=path, key=key, hint=hint) from None


# ------------------------------------------------------------------------------------------------ opening
def make_storage(url: str, *, heartbeat_interval: int = 60, grace_period: int = 600,
                 max_retry: int = MAX_RETRY, key: str = "storage") -> optuna.storages.BaseStorage:
    """A storage whose running trials send heartbeats: a journal file (``journal:///PATH``, several
    processes on one machine), SQLite or PostgreSQL; a trial whose worker stopped beating for
    ``grace_period`` seconds is failed and re-queued with its parameters. ``memory`` gives an
    in-process storage (benchmarks)."""
    if url == MEMORY:
        return optuna.storages.InMemoryStorage()
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    if url.startswith(JOURNAL_SCHEME):
        path = journal_path(url)
        if path.is_dir():
            raise UserInputError("the study storage is a folder, not a journal file", path=path, key=key)
        with storage_errors(url, key=key):
            repair_torn_journal(path)
            return HeartbeatJournalStorage(path, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                                           heartbeat_stale_trial_callback=retry)
    if not url.startswith(_RDB_SCHEMES):
        raise UserInputError(f"unsupported storage URL {redact_url(url)!r}; use journal:///PATH, sqlite:///PATH "
                             "or postgresql://USER@HOST:PORT/DB", key=key)
    if url.startswith(SQLITE_SCHEME):
        Path(url.removeprefix(SQLITE_SCHEME)).parent.mkdir(parents=True, exist_ok=True)
    driver_url = normalize_storage_url(url)
    # SQLite: wait for a lock instead of failing when the dashboard or a second process reads the file.
    engine_kwargs = {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    with storage_errors(url, key=key):
        storage = optuna.storages.RDBStorage(driver_url, engine_kwargs=engine_kwargs,
                                             heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                                             heartbeat_stale_trial_callback=retry)
    if url.startswith("sqlite"):
        _use_write_ahead_log(storage)
    return storage


def study_names(storage: optuna.storages.BaseStorage, url: str, *, key: str = "storage") -> list[str]:
    """The names of the studies a storage holds (a damaged file is refused naming it)."""
    with storage_errors(url, key=key):
        return [study.study_name for study in storage.get_all_studies()]


def study_attrs(url: str, study_name: str, *, key: str = "storage") -> dict[str, Any]:
    """The user attributes of ``study_name`` (raises :class:`UserInputError` when it is not there)."""
    return load_study(url, study_name, key=key).user_attrs


def load_study(url: str, study_name: str, *, key: str = "storage", study_key: str | None = None,
               storage: optuna.storages.BaseStorage | None = None, **study_options: Any) -> optuna.Study:
    """The study ``study_name`` in ``url`` (any storage kind), or a :class:`UserInputError` naming the file
    or URL (under ``key``) and the studies it does hold (under ``study_key``, default ``key``), never a
    password. A reader never creates a missing file. ``study_options`` go to :func:`optuna.load_study` (sampler, pruner)."""
    from orchestrator.search.optuna_adapter import quiet_optuna_notices

    quiet_optuna_notices()
    path = file_of(url)
    if storage is None and path is not None and not path.is_file():  # a reader never creates a study
        raise UserInputError("study database not found", path=path, key=key)
    storage = storage or make_storage(url, key=key)
    names = study_names(storage, url, key=key)
    if study_name not in names:
        raise UserInputError(f"no study named {study_name!r} in {describe_storage(url)} (studies: "
                             f"{', '.join(names) or 'none'})", key=study_key or key)
    with storage_errors(url, key=key):
        return optuna.load_study(study_name=study_name, storage=storage, **study_options)


def create_study(url: str, study_name: str, *, storage: optuna.storages.BaseStorage, **study_options: Any
                 ) -> optuna.Study:
    """The study ``study_name`` to maximise in ``storage``, created when it is not there yet."""
    with storage_errors(url):
        return optuna.create_study(storage=storage, study_name=study_name, direction="maximize",
                                   load_if_exists=True, **study_options)


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


# ------------------------------------------------------------------------------------------------ repair
def repair_torn_journal(path: Path, *, warn: Callable[[str], None] | None = None) -> Path | None:
    """Cut a last line that a power cut tore in half off the journal at ``path``, keeping the torn bytes
    in ``PATH.torn-TIMESTAMP`` (returned; None when the journal was whole). Runs under the journal's own
    lock, so a line another worker is appending right now is never mistaken for a torn one."""
    if not path.is_file() or _torn_tail_at(path) is None:
        return None
    with journal_lock(path):
        cut = _torn_tail_at(path)
        if cut is None:
            return None
        with open(path, "r+b") as handle:
            handle.seek(cut)
            torn = handle.read()
            backup = path.with_name(f"{path.name}{TORN_SUFFIX}{time.strftime('%Y%m%d-%H%M%S')}")
            backup.write_bytes(torn)
            handle.truncate(cut)
            handle.flush()
    (warn or _warn)(f"{path}: its last line was cut off ({len(torn)} bytes, a power cut while a worker "
                    f"wrote it); removed it and kept it in {backup}")
    return backup


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _torn_tail_at(path: Path) -> int | None:
    """The offset where a torn last line starts (no newline, or not JSON), None when it is whole."""
    size = path.stat().st_size
    if size == 0:
        return None
    with open(path, "rb") as handle:
        handle.seek(size - 1)
        whole = handle.read(1) == b"\n"
        end = size - 1 if whole else size  # the last line's bytes are [start, end)
        start, position = 0, end
        while position > 0:  # read backwards until the newline before the last line
            step = min(position, 1 << 16)
            handle.seek(position - step)
            newline = handle.read(step).rfind(b"\n")
            if newline >= 0:
                start = position - step + newline + 1
                break
            position -= step
        handle.seek(start)
        line = handle.read(end - start)
    if not whole:
        return start
    try:
        json.loads(line)
    except ValueError:
        return start
    return None
