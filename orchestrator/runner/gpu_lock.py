"""One trainer per GPU: a lock file per GPU that the process running (or following) a trainer holds.

A search worker or a queue runner takes the locks of its GPUs before it starts or re-adopts a trainer
and keeps them while it lives. The lock is an ``flock``, so the kernel drops it when its holder dies
(kill -9, reboot); the file's text (pid, what holds it) is only for the message a second taker gets.
The trainer itself runs in tmux and may outlive its holder: whoever takes the GPU next re-adopts or
stops that trainer before starting one (the search's resume does).

The folder is machine-wide (``$LORA_PIPELINE_GPU_LOCK_DIR``, default a per-user folder in the system's
temporary folder), so two searches in different output folders cannot share a GPU either.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from orchestrator.common.errors import PipelineError

GPU_LOCK_DIR_ENV = "LORA_PIPELINE_GPU_LOCK_DIR"


class GpuBusy(PipelineError):
    """Another live process holds a GPU's lock."""


def gpu_lock_folder() -> Path:
    configured = os.environ.get(GPU_LOCK_DIR_ENV)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / f"lora-pipeline-{os.getuid()}" / "gpus"


def gpu_holder(gpu: int, folder: Path | None = None) -> dict[str, Any] | None:
    """What holds ``gpu``'s lock (pid, purpose), or None when it is free."""
    path = (folder or gpu_lock_folder()) / f"gpu_{gpu}.lock"
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder_text(fd)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _holder_text(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode(errors="replace") or "{}")
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
        self._fds: list[int] = []

    def __enter__(self) -> GpuLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            for gpu in self.gpus:
                self._fds.append(self._take(gpu))
        except BaseException:
            self.release()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()

    def _take(self, gpu: int) -> int:
        fd = os.open(self.folder / f"gpu_{gpu}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _holder_text(fd)
                    os.close(fd)
                    raise GpuBusy(f"GPU {gpu} is in use by pid {holder.get('pid', '?')} "
                                  f"({holder.get('purpose', 'unknown')}); one trainer per GPU: wait for it "
                                  f"or pick other GPUs (lock file {self.folder / f'gpu_{gpu}.lock'})") from None
                time.sleep(min(0.5, max(0.05, deadline - time.monotonic())))
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "purpose": self.purpose}).encode(), 0)
        return fd

    def release(self) -> None:
        for fd in self._fds:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self._fds = []
