"""Following a launched run: its log into ``run.json``, its end into an outcome; stopping; re-adopting.

``RunHandle.follow`` reads the log from the start (so a re-adopted run gets the same record) until the
supervisor reports the trainer's exit. Success is ``model saved.`` plus the final checkpoint on disk,
never the exit code alone.
"""

from __future__ import annotations

import codecs
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.kohya.log_grammar import (
    EpochStarted,
    Failure,
    Finished,
    LogEvent,
    LogParser,
    SamplesGenerated,
)
from orchestrator.kohya.outputs import find_checkpoints, find_samples
from orchestrator.runner import tmux
from orchestrator.runner.files import RunFiles, pid_alive
from orchestrator.runner.record import RunRecord, load_run_record, now_iso

EventCallback = Callable[[LogEvent, RunRecord], None]
_CHUNK = 1 << 20


class LogTail:
    """Reads a growing log incrementally and folds its events into a record (in memory)."""

    def __init__(self, record: RunRecord) -> None:
        self.record = record
        self.parser = LogParser()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stream: Any = None

    def poll(self, on_event: EventCallback | None = None) -> bool:
        """Read what was appended since the last call; True when the log grew."""
        if self._stream is None:
            path = Path(self.record.log_path or "")
            if not path.is_file():
                return False
            self._stream = open(path, "rb")
        grew = False
        while chunk := self._stream.read(_CHUNK):
            grew = True
            self._apply(self.parser.feed(self._decoder.decode(chunk)), on_event)
        return grew

    def close(self, on_event: EventCallback | None = None) -> None:
        self.poll(on_event)
        self._apply(self.parser.feed(self._decoder.decode(b"", final=True)) + self.parser.close(), on_event)
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def _apply(self, events: list[LogEvent], on_event: EventCallback | None) -> None:
        for event in events:
            self.record.apply(event)
            # Sample files appear after their log line: look again when the next epoch starts too.
            if isinstance(event, (SamplesGenerated, EpochStarted, Finished)):
                refresh_samples(self.record)
            if on_event is not None:
                on_event(event, self.record)


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
        return record

    def _stop_trainer(self, trainer: dict[str, Any] | None, reason: str) -> None:
        """Interrupt now; escalate to SIGKILL after ``stop_timeout`` (checked on each poll)."""
        self.files.request_stop(reason)
        pid = (trainer or {}).get("pid")
        if not pid_alive(pid):
            return
        if self._stop_sent_at is None:
            self._stop_sent_at = time.monotonic()
            _signal(pid, signal.SIGINT)
        elif time.monotonic() - self._stop_sent_at > self.stop_timeout:
            _signal(pid, signal.SIGKILL)

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


def decide_outcome(*, finished_logged: bool, final_on_disk: bool, log_failure: dict[str, Any] | None,
                   exit_code: int | None, signal_number: int | None, stop_reason: str | None,
                   vanished: str | None, supervisor_error: str | None = None,
                   stall_seconds: float | None = None) -> tuple[str, dict[str, Any] | None]:
    """``(status, failure)`` of an ended run. Pure: the rules in one place."""
    if finished_logged and final_on_disk:
        return "succeeded", None
    if stop_reason and stop_reason not in ("nan_loss", "stalled"):
        return "stopped", None  # a person, or the search pruning a trial: not a failure of the run
    if log_failure is not None and (stop_reason != "stalled" or log_failure["cause"] != "traceback"):
        return "failed", log_failure
    if stop_reason == "stalled":
        return "failed", {"cause": "unknown", "lines": [],
                          "message": f"stalled: no output for {stall_seconds or 0:g} s; stopped"}
    if supervisor_error:
        return "failed", {"cause": "unknown", "message": supervisor_error, "lines": []}
    if signal_number:
        try:
            name = signal.Signals(signal_number).name
        except ValueError:
            name = ""
        return "failed", {"cause": "killed_by_signal", "lines": [],
                          "message": f"trainer killed by signal {signal_number} {name}".strip()}
    if vanished:
        cause = "killed_by_signal" if "killed" in vanished else "unknown"
        return "failed", {"cause": cause, "message": vanished, "lines": []}
    if finished_logged:
        return "failed", {"cause": "unknown", "lines": [],
                          "message": "`model saved.` was logged but the final checkpoint is not on disk"}
    return "failed", {"cause": "unknown", "lines": [],
                      "message": f"the trainer exited with code {exit_code} without `model saved.`"}


def refresh_samples(record: RunRecord) -> None:
    samples, _ = find_samples(record.run_dir, record.output_name)
    for sample in samples:
        if sample.epoch is not None:
            record.samples[str(sample.epoch)] = []
    for sample in samples:
        if sample.epoch is not None:
            record.samples[str(sample.epoch)].append(str(sample.path))


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
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
    files.request_stop(reason)
    pid = (files.read(files.trainer) or {}).get("pid")
    for signum, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        if not pid_alive(pid):
            break
        _signal(pid, signum)
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


def failure_advice(failure: dict[str, Any] | Failure | None) -> str | None:
    """One line telling a person what to try for a failure cause."""
    cause = failure.cause if isinstance(failure, Failure) else (failure or {}).get("cause")
    return {
        "cuda_oom": "out of GPU memory: lower the batch size (--retry-oom halves it and doubles gradient "
                    "accumulation), enable gradient_checkpointing, or cache latents",
        "nan_loss": "the loss became NaN/inf: lower the learning rate, use bf16 instead of fp16, or check "
                    "the images",
        "import_error": "a Python package is missing in the trainer's environment (see the message)",
        "no_data": "sd-scripts found no images: check image_dir in the dataset config and the kohya folder "
                   "layout ({repeats}_{name}/)",
        "killed_by_signal": "the trainer was killed from outside (the system's OOM killer, or a person)",
    }.get(cause or "")
