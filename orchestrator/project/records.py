"""What a project remembers of each stage: ``DIR/.project/stages/<stage>.json``, written atomically.

A record holds the stage's *fingerprint* (a hash of the options it reads, the content of its outside
inputs and the completion ids of the stages it reads from), its status and a few facts for ``status``.
A stage is skipped when its record says done with the fingerprint it would have now and its folder is
still there. Every completion gets a new id, so redoing a stage changes the fingerprints of those after it
and they are redone too; nothing before it is touched.

Hashing a film of gigabytes takes seconds, so content hashes are cached by (path, size, mtime): a second
``run`` that has nothing to do answers in well under a second.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_write_json
from orchestrator.common.hashing import file_sha256

STATE_DIR = ".project"
RECORDS_DIR = "stages"
HASH_CACHE = "hashes.json"
RUN_LOCK = "run.lock"
# A record's status: the one vocabulary of run and status.
DONE, RUNNING, FAILED, WAITING = "done", "running", "failed", "waiting"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class StageRecord:
    stage: str
    status: str
    fingerprint: str
    completion: str = ""  # a new id each time the stage succeeds; the stages after it hash it
    started_at: str = ""
    finished_at: str = ""
    seconds: float = 0.0
    facts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @classmethod
    def finished(cls, stage: str, fingerprint: str, *, seconds: float, facts: dict[str, Any],
                 started_at: str) -> StageRecord:
        return cls(stage=stage, status=DONE, fingerprint=fingerprint, completion=uuid.uuid4().hex,
                   started_at=started_at, finished_at=now_iso(), seconds=round(seconds, 2), facts=facts)


def state_dir(project_dir: Path) -> Path:
    return project_dir / STATE_DIR


def record_path(project_dir: Path, stage: str) -> Path:
    return state_dir(project_dir) / RECORDS_DIR / f"{stage}.json"


def read_record(project_dir: Path, stage: str) -> StageRecord | None:
    path = record_path(project_dir, stage)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return StageRecord(**data)
    except (OSError, ValueError, TypeError):
        return None  # never written, or unreadable: the stage is redone, which is always safe


def write_record(project_dir: Path, record: StageRecord) -> Path:
    return atomic_write_json(record_path(project_dir, record.stage), asdict(record))


def fingerprint(document: Any) -> str:
    """The hash of a JSON-able document (keys sorted, so order never matters)."""
    text = json.dumps(document, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class ContentHashes:
    """Content hashes of files, cached by (path, size, mtime) in ``DIR/.project/hashes.json``."""

    def __init__(self, project_dir: Path) -> None:
        self.path = state_dir(project_dir) / HASH_CACHE
        try:
            self._cache: dict[str, list[Any]] = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self._cache = {}
        self._changed = False

    def of_file(self, path: Path) -> str:
        stat = path.stat()
        key = str(path.resolve())
        cached = self._cache.get(key)
        if cached and cached[0] == stat.st_size and cached[1] == stat.st_mtime_ns:
            return str(cached[2])
        digest = file_sha256(path)
        self._cache[key] = [stat.st_size, stat.st_mtime_ns, digest]
        self._changed = True
        return digest

    def of_folder(self, folder: Path) -> dict[str, str]:
        """Each image's hash by its path under ``folder`` (a references folder: its images are what counts)."""
        from orchestrator.vision import list_image_files

        return {str(p.relative_to(folder)): self.of_file(p) for p in list_image_files(folder)}

    def save(self) -> None:
        if self._changed:
            atomic_write_json(self.path, self._cache)
            self._changed = False
