"""A study storage URL as the user writes it, made into one SQLAlchemy can open, or a clear refusal.

SQLAlchemy 2 maps a bare ``postgresql://`` to the ``psycopg`` (3) driver, which is not what we install;
the documented URL must work, so a bare scheme gets the installed driver. A SQLite file that exists but
is not a database, or a server that does not answer, is named in one line (password hidden).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from orchestrator.common.errors import UserInputError

T = TypeVar("T")
# The PostgreSQL drivers SQLAlchemy knows, in the order we prefer them.
_POSTGRES_DRIVERS = (("psycopg2", "psycopg2"), ("psycopg", "psycopg"), ("pg8000", "pg8000"))
_SQLITE_MAGIC = b"SQLite format 3\x00"


def redact_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db`` (for logs and files)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL at all: show it unless it might carry a password
        return url if "@" not in url else "<storage URL hidden: not a valid URL>"


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


def opening_storage(url: str, open_storage: Callable[[], T]) -> T:
    """``open_storage()``, with a database that cannot be reached or read turned into one clear line."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return open_storage()
    except SQLAlchemyError as error:
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()
        raise UserInputError(f"cannot open the study storage {redact_url(url)}: {type(error).__name__}: "
                             f"{detail[0] if detail else ''}", key="storage",
                             hint="check that the server is up and the URL, user and database are right"
                             ) from None
