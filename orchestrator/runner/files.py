"""The runner's small files inside ``RUN_DIR/.runner/`` and the run-folder lock.

- ``lock``: flock'ed by the launcher while it prepares a run, then by the supervisor while the trainer
  lives; a second run on the folder fails to take it;
- ``launch.json``: what the supervisor runs (argv, cwd, the variables the run sets, log path);
- ``environment.json``: the trainer's whole environment (the caller's plus the run's), owner-only
  (0600): the tmux server's own environment dates from when that server started;
- ``trainer.json`` / ``exit.json``: written by the supervisor (pid; exit code or signal);
- ``stop.json``: a stop was asked for, and why (``user``, ``nan_loss``, ``stalled``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_write_json
from orchestrator.common.errors import UserInputError
from orchestrator.common.file_lock import FileLock, LockBusy

RUNNER_FOLDER = ".runner"


@dataclass(frozen=True)
class RunFiles:
    run_dir: Path

    @property
    def folder(self) -> Path:
        return self.run_dir / RUNNER_FOLDER

    @property
    def lock(self) -> Path:
        return self.folder / "lock"

    @property
    def spec(self) -> Path:
        return self.folder / "launch.json"

    @property
    def environment(self) -> Path:
        return self.folder / "environment.json"

    @property
    def trainer(self) -> Path:
        return self.folder / "trainer.json"

    @property
    def exit(self) -> Path:
        return self.folder / "exit.json"

    @property
    def stop(self) -> Path:
        return self.folder / "stop.json"

    def read(self, path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def trainer_alive(self) -> bool:
        """The trainer or its supervisor still runs (the supervisor outlives the trainer by its last writes)."""
        trainer = self.read(self.trainer) or {}
        return pid_alive(trainer.get("pid")) or pid_alive(trainer.get("supervisor_pid"))

    def trainer_gone(self) -> bool:
        """The trainer started and neither it nor its supervisor runs any more: nothing is left to stop.
        False before the trainer started (its supervisor may be starting it)."""
        return self.read(self.trainer) is not None and not self.trainer_alive()

    def request_stop(self, reason: str) -> None:
        if self.read(self.stop) is None:  # the first reason stays: a NaN stop is not turned into "user"
            atomic_write_json(self.stop, {"reason": reason})

    def clear_status(self) -> None:
        for path in (self.trainer, self.exit, self.stop):
            path.unlink(missing_ok=True)


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        import psutil

        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE
    except Exception:  # noqa: BLE001 - NoSuchProcess, AccessDenied on a foreign pid: treat as gone
        return False


class RunLock:
    """Exclusive, non-blocking lock on a run folder (a context manager)."""

    def __init__(self, run_dir: Path) -> None:
        self.files = RunFiles(run_dir)
        self._lock: FileLock | None = None

    def __enter__(self) -> RunLock:
        # The holder's pid, for the message a second run gets.
        self._lock = FileLock(self.files.lock, holder=f"{os.getpid()}\n")
        try:
            self._lock.acquire()
        except LockBusy as busy:
            raise UserInputError(
                f"another run is using this folder (lock held by pid {busy.holder or 'unknown'})",
                path=self.files.run_dir,
                hint="wait for it, `lora-pipeline stop` it, or choose another output_name") from None
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

