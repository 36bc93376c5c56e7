"""An exclusive lock on a file that tells a second taker who holds it.

The lock is an ``flock``, so the kernel drops it when its holder dies (kill -9, reboot) and a stale lock
never needs cleaning up. The text in the file (a pid, or JSON naming a purpose) is only for the message a
second taker gets: it is written after the lock is taken and read, never trusted, when the lock is busy.
The run folder's lock, the GPU locks and the queue file's lock are all this one kind.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path

from orchestrator.common.errors import PipelineError

HOLDER_TEXT_LIMIT = 4096
log = logging.getLogger(__name__)


class LockBusy(PipelineError):
    """Another process holds the lock; ``holder`` is the text it wrote (may be empty)."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path, self.holder = path, holder
        super().__init__(f"{path} is locked by another process ({holder or 'holder unknown'})")


def _read_holder(fd: int) -> str:
    return os.pread(fd, HOLDER_TEXT_LIMIT, 0).decode(errors="replace").strip()


class FileLock:
    """Exclusive lock on ``path`` (a context manager); the file is created when missing.

    ``wait``: seconds to wait for a busy lock before :class:`LockBusy` (0 = refuse at once, None = wait as
    long as it takes). ``holder``: the text a second taker reads in its message.
    """

    def __init__(self, path: Path, *, holder: str = "", wait: float | None = 0.0) -> None:
        self.path, self.holder, self.wait = Path(path), holder, wait
        self._fd: int | None = None

    def acquire(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if self.wait is None:
                self._take_when_free(fd)
            else:
                self._take_within(fd, self.wait)
            os.ftruncate(fd, 0)
            os.pwrite(fd, self.holder.encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def _take_when_free(self, fd: int) -> None:
        """Wait as long as it takes, but say for whom: a silent wait on a hung holder looks like a hang."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("waiting for %s, held by %s", self.path, _read_holder(fd) or "a process that did not say")
            fcntl.flock(fd, fcntl.LOCK_EX)

    def _take_within(self, fd: int, wait: float) -> None:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LockBusy(self.path, _read_holder(fd)) from None
                time.sleep(min(0.5, max(0.05, left)))

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()


def lock_holder(path: Path) -> str | None:
    """The text of whoever holds ``path``'s lock, or None when nobody does (a missing file is not created)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(fd)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
