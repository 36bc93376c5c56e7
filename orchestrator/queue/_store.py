"""The queue file: one JSON file a person can read, written atomically, edited under a lock.

``queue add`` and ``queue cancel`` may run while ``queue run`` works the queue: every change is a
read-modify-write under an exclusive lock (``common/file_lock.py``) on ``QUEUE.lock`` beside the file, so no edit is lost,
and the file itself is replaced atomically, so a reader (or a reboot) never sees half of it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.common.atomic import atomic_write_json
from orchestrator.common.errors import UserInputError
from orchestrator.common.file_lock import FileLock
from orchestrator.common.state_files import read_json_document
from orchestrator.queue._state import QueueState

QUEUE_FILE = "queue.json"


class QueueStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(f"{path.name}.lock")

    def read(self) -> QueueState:
        """The queue as it is now (no lock: the file is always whole)."""
        if not self.path.exists():
            return QueueState()
        if not self.path.is_file():  # a folder in the file's place is not an empty queue
            raise UserInputError("is not a file; give the queue file (or a path where one can be made)",
                                 path=self.path, key="queue")
        data = read_json_document(self.path, what="queue file",
                                  hint="fix it by hand, or move it aside and add the jobs again")
        return QueueState.from_data(data, source=str(self.path))

    @contextmanager
    def edit(self) -> Iterator[QueueState]:
        """The queue, locked against other editors; written back when the block ends without an error."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(self.lock_path, holder=f"pid {os.getpid()}\n", wait=None):
            state = self.read()
            yield state
            atomic_write_json(self.path, state.to_data())
