"""Following a launched run: its log into ``run.json``, its end into an outcome; stopping; re-adopting.

The outcome rules live in ``outcome.py``, the incremental log reading in ``log_tail.py``.

``RunHandle.follow`` reads the log from the start (so a re-adopted run gets the same record) until the
supervisor reports the trainer's exit. Success is ``model saved.`` plus the final checkpoint on disk,
never the exit code alone. A concluded run's tmux session is closed (its log holds every byte the pane
showed), so sessions never pile up over a long search.

Signals go to the trainer's process group (the supervisor starts it in a group of its own), so every
process of an ``accelerate launch`` with several GPUs gets them, never the supervisor.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.kohya.outputs import find_checkpoints
from orchestrator.runner import tmux
from orchestrator.runner.files import RunFiles, pid_alive
from orchestrator.runner.log_tail import EventCallback, LogTail, refresh_samples
from orchestrator.runner.outcome import decide_outcome
from orchestrator.runner.record import RunRecord, load_run_record, now_iso

__all__ = ["EventCallback", "LogTail", "RunHandle", "adopt_run", "close_session", "signal_trainer", "stop_run"]


@dataclass
class RunHandle:
    """A launched (or re-adopted) run. ``follow`` blocks until the trainer has ended."""

    run_dir: Path
    record: RunRecord
    stop_on_nan: bool = True
    stall_seconds: float | None = 1800.0  # no new output for this long: stop and fail the run (None: never)
    start_seconds: float = 120.0  # the supervisor must report the trainer's pid within this
    stop_timeout: float = 60.0
    _stop_sent_at: float | None = field(default=None, repr=False)
    _requested_stop: str | None = field(default=None, repr=False)

    @property
    def files(self) -> RunFiles:
        return RunFiles(self.run_dir)

    def follow(self, on_event: EventCallback | None = None, poll_seconds: float = 0.5) -> RunRecord:
        """Tail the log into ``run.json`` (rewritten atomically as events arrive) until the run ends."""
        record = load_run_record(self.run_dir)
        tail = LogTail(record)
        began = last_output = time.monotonic()
        vanished: str | None = None
        try:
            while True:
                exit_info = self.files.read(self.files.exit)  # read before draining: the log is complete
                trainer = self.files.read(self.files.trainer)
                dirty = False
                if trainer and (record.pid != trainer.get("pid") or record.status == "pending"):
                    record.pid, record.status, dirty = trainer.get("pid"), "running", True
                if tail.poll(on_event):
                    last_output, dirty = time.monotonic(), True
                if dirty:
                    record.save()
                if exit_info is not None:
                    break
                now = time.monotonic()
                if self._requested_stop is not None:
                    self._stop_trainer(trainer, self._requested_stop)
                if tail.parser.failure and tail.parser.failure.cause == "nan_loss" and self.stop_on_nan:
                    self._stop_trainer(trainer, "nan_loss")
                if self.stall_seconds and now - last_output > self.stall_seconds:
                    self._stop_trainer(trainer, "stalled")
                if trainer is None and now - began > self.start_seconds:
                    vanished = "the trainer did not start"
                    break
                if trainer and not pid_alive(trainer.get("pid")) and not pid_alive(trainer.get("supervisor_pid")):
                    if self.files.read(self.files.exit) is None:
                        vanished = "the trainer and its supervisor are gone without an exit status (killed)"
                        break
                    continue
                time.sleep(poll_seconds)
        finally:
            tail.close(on_event)
        self._finalize(record, self.files.read(self.files.exit), vanished)
        record.save()
        self.record = record
        close_session(record)
        return record

    def request_stop(self, reason: str) -> None:
        """Ask for a stop without waiting: ``follow`` (the caller's loop, possibly the one calling this
        from its event callback) interrupts the trainer on its next poll and escalates to SIGKILL after
        ``stop_timeout``, while it keeps watching for NaN, stalls and the trainer's exit."""
        self.files.request_stop(reason)
        if self._requested_stop is None:
            self._requested_stop = reason

    def _stop_trainer(self, trainer: dict[str, Any] | None, reason: str) -> None:
        """Interrupt now; escalate to SIGKILL after ``stop_timeout`` (checked on each poll)."""
        self.files.request_stop(reason)
        if not pid_alive((trainer or {}).get("pid")):
            return
        if self._stop_sent_at is None:
            self._stop_sent_at = time.monotonic()
            signal_trainer(trainer, signal.SIGINT)
        elif time.monotonic() - self._stop_sent_at > self.stop_timeout:
            signal_trainer(trainer, signal.SIGKILL)

    def _finalize(self, record: RunRecord, exit_info: dict[str, Any] | None, vanished: str | None) -> None:
        refresh_samples(record)
        exit_info = exit_info or {}
        record.exit_code = exit_info.get("exit_code")
        record.signal = exit_info.get("signal")
        record.finished_at = now_iso()
        stop = self.files.read(self.files.stop) or {}
        final_on_disk = any(c.is_final and c.path.is_file()
                            for c in find_checkpoints(self.run_dir, record.output_name))
        status, failure = decide_outcome(
            finished_logged=record.finished_logged, final_on_disk=final_on_disk,
            log_failure=record.failure, exit_code=record.exit_code, signal_number=record.signal,
            stop_reason=stop.get("reason"), vanished=vanished, supervisor_error=exit_info.get("error"),
            stall_seconds=self.stall_seconds)
        record.status = status
        record.failure = failure
        record.stop_reason = stop.get("reason")
        if failure is not None and not failure.get("lines"):
            failure["lines"] = tmux.capture_pane(record.tmux_session or "", record.tmux_socket)

    def stop(self, timeout: float = 60.0) -> RunRecord:
        return stop_run(self.run_dir, timeout=timeout)


def close_session(record: RunRecord) -> None:
    """Close the concluded run's tmux session (its shell stays after the supervisor exits)."""
    if record.tmux_session and not record.is_active:
        tmux.kill_session(record.tmux_session, record.tmux_socket)


def signal_trainer(trainer: dict[str, Any] | None, signum: int) -> None:
    """Send ``signum`` to the trainer's process group (``trainer.json``'s ``pgid``), or to its pid when
    the supervisor that started it predates process groups."""
    trainer = trainer or {}
    try:
        if trainer.get("pgid"):
            os.killpg(int(trainer["pgid"]), signum)
        elif trainer.get("pid"):
            os.kill(int(trainer["pid"]), signum)
    except OSError:
        pass


def stop_run(run_dir: str | Path, *, timeout: float = 60.0, reason: str = "user") -> RunRecord:
    """Interrupt the trainer (SIGINT), escalate to TERM then KILL after ``timeout`` s; complete run.json.

    The run ends ``stopped`` (``reason`` is kept in ``run.json``'s ``stop_reason``), unless it had
    already succeeded; the reasons ``nan_loss`` and ``stalled`` are the runner's own and end ``failed``.
    """
    run_dir = Path(run_dir)
    record = load_run_record(run_dir)
    files = RunFiles(run_dir)
    if not record.is_active:
        return record
    if files.trainer_gone():  # nothing left to stop: conclude the record from what the run left behind
        return RunHandle(run_dir=run_dir, record=record, start_seconds=5.0).follow(poll_seconds=0.2)
    files.request_stop(reason)
    trainer = files.read(files.trainer) or {}
    pid = trainer.get("pid")
    for signum, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        if not pid_alive(pid):
            break
        signal_trainer(trainer, signum)
        deadline = time.monotonic() + wait
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    return RunHandle(run_dir=run_dir, record=record, start_seconds=5.0).follow(poll_seconds=0.2)


def adopt_run(run_dir: str | Path) -> RunHandle | None:
    """A handle on a run whose record is not complete (its trainer may still be running), else None."""
    run_dir = Path(run_dir)
    record = load_run_record(run_dir)
    if not record.is_active:
        return None
    return RunHandle(run_dir=run_dir, record=record)
