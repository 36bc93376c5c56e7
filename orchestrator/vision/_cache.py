"""On-disk embedding cache: one SQLite file, rows keyed by (model identity, file content sha256).

Keyed by content, not path: a renamed or copied frame is still a hit, an edited one is a miss.
Hashing thousands of frames on every re-run would dominate a cached run, so file hashes are
memoised by (absolute path, size, mtime_ns); a file touched in any way is hashed again.
SQLite gives atomic commits and safe sharing between a curation and an evaluation process.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from orchestrator.common.hashing import file_sha256

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    identity TEXT NOT NULL, sha256 TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (identity, sha256));
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL);
"""
_LOOKUP_CHUNK = 500  # stays under SQLite's bound-parameter limit


def default_cache_dir() -> Path:
    """``$LORA_PIPELINE_CACHE_DIR``, else ``$XDG_CACHE_HOME/lora-pipeline``, else ``~/.cache/lora-pipeline``."""
    if env := os.environ.get("LORA_PIPELINE_CACHE_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "lora-pipeline"


class EmbeddingCache:
    """Embeddings stored in ``cache_dir/embeddings.sqlite``. Use from one thread (the caller's)."""

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.cache_dir / "embeddings.sqlite"
        self._db = sqlite3.connect(self.path, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._db.commit()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def get_many(self, identity: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``hashes`` for model ``identity`` (absent ones are left out)."""
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(wanted), _LOOKUP_CHUNK):
            chunk = wanted[start:start + _LOOKUP_CHUNK]
            rows = self._db.execute(
                f"SELECT sha256, dim, vector FROM embeddings WHERE identity = ? AND sha256 IN "
                f"({','.join('?' * len(chunk))})", (identity, *chunk))
            for sha, dim, blob in rows:
                found[sha] = np.frombuffer(blob, dtype=np.float32, count=dim).copy()
        return found

    def put_many(self, identity: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        """Store (sha256, vector) pairs for ``identity`` in one transaction."""
        rows = [(identity, sha, int(vector.shape[-1]), np.ascontiguousarray(vector, dtype=np.float32).tobytes())
                for sha, vector in items]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)", rows)

    def known_hash(self, path: str | Path) -> str | None:
        """The memoised sha256 of ``path`` if the file is unchanged since it was hashed, else None."""
        resolved = Path(path).resolve()
        try:
            stat = resolved.stat()
        except OSError:
            return None
        row = self._db.execute("SELECT size, mtime_ns, sha256 FROM file_hashes WHERE path = ?",
                               (str(resolved),)).fetchone()
        if row and row[0] == stat.st_size and row[1] == stat.st_mtime_ns:
            return row[2]
        return None

    def remember_hashes(self, hashed: Iterable[tuple[Path, int, int, str]]) -> None:
        """Memoise (path, size, mtime_ns, sha256) rows, as returned by :func:`hash_file`."""
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?)",
                                 [(str(p.resolve()), s, m, h) for p, s, m, h in hashed])

    def count(self, identity: str | None = None) -> int:
        if identity is None:
            return int(self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
        return int(self._db.execute("SELECT COUNT(*) FROM embeddings WHERE identity = ?",
                                    (identity,)).fetchone()[0])


def hash_file(path: Path) -> tuple[Path, int, int, str]:
    """(path, size, mtime_ns, sha256), stat taken before reading so a concurrent edit re-hashes later."""
    stat = path.stat()
    return path, stat.st_size, stat.st_mtime_ns, file_sha256(path)
