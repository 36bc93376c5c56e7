"""Opening a file we read back: checked when it is opened, never trusted to be whole.

One rule for every state file, by what it holds:

* a **cache** (the embedding, measures and analysis databases) can be rebuilt: a damaged one is set aside
  (renamed ``NAME.damaged-STAMP``, never deleted) and started anew, with a warning naming both files;
* a file that holds a **person's work** (a queue, a run record, a results file) is read whole or refused,
  naming the file and what to do (:func:`read_json_document`); a UTF-8 byte-order mark, which editors on
  Windows write, is not damage and is read past.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.common.errors import UserInputError, one_line

log = logging.getLogger(__name__)

#: Text codec for files people may have edited: UTF-8, with a leading byte-order mark read past.
TEXT_CODEC = "utf-8-sig"
DAMAGED_SUFFIX = ".damaged-"


def set_aside(path: Path) -> Path:
    """Rename ``path`` (and a SQLite database's ``-wal``/``-shm`` companions) to an unused
    ``NAME.damaged-STAMP`` beside it; the new name."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for attempt in range(1, 1000):
        aside = path.with_name(f"{path.name}{DAMAGED_SUFFIX}{stamp}" + (f"-{attempt}" if attempt > 1 else ""))
        if not aside.exists():
            break
    path.rename(aside)
    for companion in ("-wal", "-shm"):
        extra = path.with_name(path.name + companion)
        if extra.exists():
            extra.rename(aside.with_name(aside.name + companion))
    return aside


def _open_checked(path: Path, schema: str, *, wal: bool) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=60)
    try:
        if wal:
            db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)
        db.commit()
        verdict = db.execute("PRAGMA quick_check(1)").fetchone()
        if not verdict or verdict[0] != "ok":
            raise sqlite3.DatabaseError(f"integrity check: {verdict[0] if verdict else 'no answer'}")
    except BaseException:
        db.close()
        raise
    return db


def open_cache_database(path: Path, schema: str, *, what: str, wal: bool = True) -> sqlite3.Connection:
    """The SQLite cache at ``path`` with ``schema`` in place; a damaged one (random bytes, a torn page, a
    folder in its place is not damage and raises) is set aside and rebuilt, with a warning."""
    path = Path(path)
    try:
        return _open_checked(path, schema, wal=wal)
    except sqlite3.DatabaseError as error:
        if not path.is_file():
            raise
        aside = set_aside(path)
        log.warning("%s: the %s is damaged (%s); set aside as %s and rebuilt (it only saves time)",
                    path, what, one_line(error), aside.name)
        return _open_checked(path, schema, wal=wal)


def read_json_document(path: Path, *, what: str, hint: str) -> Any:
    """The JSON in ``path``, read whole (a byte-order mark read past); :class:`UserInputError` naming the
    file, what it is and ``hint`` (what to do) when it is not JSON."""
    try:
        return json.loads(Path(path).read_bytes().decode(TEXT_CODEC))
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError alike
        raise UserInputError(f"the {what} does not parse: damaged ({one_line(error)})", path=path, hint=hint) from None
