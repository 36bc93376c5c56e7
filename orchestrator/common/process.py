"""Which process owns something: host, pid and the process's start time, so a recycled pid is told apart.

A search trial's owner and a queue runner are both stored as text and read back by another process,
maybe after a reboot; only a process on this host can be checked, so "dead" and "live" are each true only
when this host can be sure of it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import psutil

START_TIME_TOLERANCE = 0.05  # seconds: create_time is stored rounded to 1/100 s


@dataclass(frozen=True)
class ProcessIdentity:
    host: str
    pid: int
    started: float  # process create time: a recycled pid is a different process

    @classmethod
    def current(cls) -> ProcessIdentity:
        return cls(socket.gethostname(), os.getpid(), psutil.Process().create_time())

    def as_text(self) -> str:
        return f"{self.host}:{self.pid}:{self.started:.2f}"

    @classmethod
    def parse(cls, text: str) -> ProcessIdentity | None:
        try:
            host, pid, started = text.rsplit(":", 2)
            return cls(host, int(pid), float(started))
        except (ValueError, AttributeError):
            return None

    def _same_process_runs(self) -> bool:
        try:
            return abs(psutil.Process(self.pid).create_time() - self.started) <= START_TIME_TOLERANCE
        except psutil.NoSuchProcess:
            return False

    def is_dead_local_process(self) -> bool:
        """True only when we can be sure: same host and that process is gone (or the pid was reused)."""
        return self.host == socket.gethostname() and not self._same_process_runs()

    def is_live_local_process(self) -> bool:
        """True only when this very process (same host, same pid and start time) still runs."""
        try:
            return self.host == socket.gethostname() and self._same_process_runs()
        except psutil.Error:
            return False
