"""One trainer per GPU: a lock file per GPU that the process running (or following) a trainer holds.

A search worker or a queue runner takes the locks of its GPUs before it starts or re-adopts a trainer
and keeps them while it lives. The lock is a ``common/file_lock.py`` lock (an ``flock``), so the kernel
drops it when its holder dies (kill -9, reboot); the file's text (pid, what holds it) is only for the
message a second taker gets.
The trainer itself runs in tmux and may outlive its holder: whoever takes the GPU next re-adopts or
stops that trainer before starting one (the search's resume does).

The folder is machine-wide (``$LORA_PIPELINE_GPU_LOCK_DIR``, default a per-user folder in the system's
temporary folder), so two searches in different output folders cannot share a GPU either.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from orchestrator.common.errors import PipelineError
from orchestrator.common.file_lock import FileLock, LockBusy, lock_holder

GPU_LOCK_DIR_ENV = "LORA_PIPELINE_GPU_LOCK_DIR"


class GpuBusy(PipelineError):
    """Another live process holds a GPU's lock."""


def gpu_lock_folder() -> Path:
    configured = os.environ.get(GPU_LOCK_DIR_ENV)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / f"lora-pipeline-{os.getuid()}" / "gpus"


def gpu_holder(gpu: int, folder: Path | None = None) -> dict[str, Any] | None:
    """What holds ``gpu``'s lock (pid, purpose), or None when it is free."""
    text = lock_holder((folder or gpu_lock_folder()) / f"gpu_{gpu}.lock")
    return None if text is None else _holder_of(text)


def _holder_of(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


class GpuLock:
    """The locks of ``gpus`` (a context manager). ``wait`` seconds: how long to wait for a busy GPU
    (0 = refuse at once). Locks are taken in ascending order, so two takers never deadlock."""

    def __init__(self, gpus: Iterable[int], *, purpose: str, wait: float = 0.0, folder: Path | None = None) -> None:
        self.gpus: Sequence[int] = sorted(set(gpus))
        self.purpose = purpose
        self.wait = wait
        self.folder = folder or gpu_lock_folder()
        self._locks: list[FileLock] = []

    def __enter__(self) -> GpuLock:
        holder = json.dumps({"pid": os.getpid(), "purpose": self.purpose})
        try:
            for gpu in self.gpus:
                path = self.folder / f"gpu_{gpu}.lock"
                try:
                    self._locks.append(FileLock(path, holder=holder, wait=self.wait).acquire())
                except LockBusy as busy:
                    known = _holder_of(busy.holder)
                    raise GpuBusy(f"GPU {gpu} is in use by pid {known.get('pid', '?')} "
                                  f"({known.get('purpose', 'unknown')}); one trainer per GPU: wait for it "
                                  f"or pick other GPUs (lock file {path})") from None
        except BaseException:
            self.release()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()

    def release(self) -> None:
        for lock in self._locks:
            lock.release()
        self._locks = []
