"""Start a rendered run in tmux, follow its log into ``run.json``, stop it, re-adopt it.

``start_training`` returns at once with a :class:`RunHandle`; ``RunHandle.follow`` reads the log as it
grows (from the start, so a re-adopted run gets the same record) until the supervisor reports the
trainer's exit, then decides the outcome: success is ``model saved.`` plus the final checkpoint on
disk, never the exit code alone.
"""

from __future__ import annotations

import codecs
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_write_json
from orchestrator.common.errors import PipelineError, UserInputError
from orchestrator.config.paths import ProjectPaths
from orchestrator.kohya.command import (
    build_training_command,
    newest_state_dir,
    parse_gpus,
    resume_step_offset,
)
from orchestrator.kohya.log_grammar import Failure, LogEvent, LogParser, SamplesGenerated
from orchestrator.kohya.outputs import find_checkpoints, find_samples
from orchestrator.kohya.render import RenderedRun
from orchestrator.runner import preflight as checks
from orchestrator.runner import tmux
from orchestrator.runner.files import RunFiles, RunLock, pid_alive
from orchestrator.runner.record import RunRecord, load_run_record, now_iso

log = logging.getLogger(__name__)

SUPERVISOR = Path(__file__).with_name("supervisor.py")
EventCallback = Callable[[LogEvent, RunRecord], None]


class PreflightFailed(PipelineError):
    """One line per problem; nothing was started."""

    def __init__(self, report: checks.PreflightReport) -> None:
        self.report = report
        super().__init__("pre-flight failed:\n" + "\n".join(f"  - {p}" for p in report.problems))


def run_preflight(rendered: RenderedRun, *, paths: ProjectPaths, gpus: str | None = None,
                  resume: bool = False, allow_cpu: bool = False) -> checks.PreflightReport:
    report = checks.merge(
        checks.check_tools(sd_scripts=paths.sd_scripts, trainer_python=paths.trainer_python,
                           script_name=rendered.script_name),
        checks.check_dataset(rendered.dataset),
        checks.check_base_model(rendered.training.get("pretrained_model_name_or_path")),
        checks.check_vram(rendered.min_vram_gb, parse_gpus(gpus), allow_cpu=allow_cpu),
        checks.check_disk(rendered.run_dir, checks.estimate_checkpoint_bytes(rendered.training,
                                                                             rendered.family)),
    )
    record = _existing_record(rendered.run_dir)
    if record is not None and record.is_active and _trainer_alive(rendered.run_dir):
        report.problems.append(f"run folder: {rendered.run_dir} has a live run (tmux session "
                               f"{record.tmux_session}); stop it first")
    if resume and newest_state_dir(rendered.run_dir, rendered.output_name) is None:
        report.problems.append(f"resume: no *-state folder of {rendered.output_name} in {rendered.run_dir} "
                               "(save_state = true writes them)")
    return report


def _existing_record(run_dir: Path) -> RunRecord | None:
    try:
        return load_run_record(run_dir)
    except UserInputError:
        return None


def _trainer_alive(run_dir: Path) -> bool:
    trainer = RunFiles(run_dir).read(RunFiles(run_dir).trainer) or {}
    return pid_alive(trainer.get("pid")) or pid_alive(trainer.get("supervisor_pid"))


def start_training(rendered: RenderedRun, *, paths: ProjectPaths, session_name: str | None = None,
                   gpus: str | None = None, resume: bool = False, allow_cpu: bool = False,
                   tmux_socket: str | None = None, run_checks: bool = True,
                   relaunch_reason: str | None = None) -> RunHandle:
    """Pre-flight, then launch ``rendered`` in a new tmux session; returns without waiting."""
    run_dir = Path(rendered.run_dir)
    tmux_socket = tmux_socket if tmux_socket is not None else tmux.default_socket()
    if run_checks:
        report = run_preflight(rendered, paths=paths, gpus=gpus, resume=resume, allow_cpu=allow_cpu)
        for line in report.warnings:
            log.warning("%s", line)
        if not report.ok:
            raise PreflightFailed(report)
    files = RunFiles(run_dir)
    with RunLock(run_dir):
        if _existing_record(run_dir) is not None and _trainer_alive(run_dir):
            raise UserInputError("a trainer is still running in this folder", path=run_dir)
        state_dir = newest_state_dir(run_dir, rendered.output_name) if resume else None
        if resume and state_dir is None:
            raise UserInputError("nothing to resume: no *-state folder", path=run_dir)
        command = build_training_command(
            trainer_python=paths.trainer_python, sd_scripts=paths.sd_scripts,
            script_name=rendered.script_name, config_file=rendered.config_file,
            gpus=parse_gpus(gpus), resume_state=state_dir)
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
        log_path = Path(paths.logs_dir).resolve() / f"{rendered.output_name}_{stamp}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if session_name is None:
            session = tmux.free_session_name(rendered.output_name, tmux_socket)
        else:
            session = session_name
            if tmux.session_exists(session, tmux_socket):
                raise UserInputError(f"tmux session {session!r} already exists", key="session",
                                     hint=f"attach with `tmux attach -t {session}`, kill it, or pass "
                                          "--session OTHER")
        record = _record_for_launch(rendered, previous=_existing_record(run_dir),
                                    continuing=resume or relaunch_reason is not None,
                                    reason=relaunch_reason or ("resume" if resume else None))
        record.argv = command.argv
        record.log_path = str(log_path)
        record.tmux_session = session
        record.tmux_socket = tmux_socket
        record.step_offset = resume_step_offset(state_dir) if state_dir else 0
        record.started_at = now_iso()
        files.clear_status()
        record.save()
        atomic_write_json(files.spec, {"argv": command.argv, "cwd": str(command.cwd), "env": command.env,
                                       "log_path": str(log_path), "lock_path": str(files.lock),
                                       "status_dir": str(files.folder)})
        tmux.start_session(session, [sys.executable, str(SUPERVISOR), str(files.spec)],
                           cwd=command.cwd, socket_name=tmux_socket)
    return RunHandle(run_dir=run_dir, record=record)


def _record_for_launch(rendered: RenderedRun, *, previous: RunRecord | None, continuing: bool,
                       reason: str | None) -> RunRecord:
    fresh = RunRecord(output_name=rendered.output_name, run_dir=str(rendered.run_dir),
                      config_file=str(rendered.config_file),
                      dataset_config_file=str(rendered.dataset_config_file))
    if previous is None or not continuing:
        return fresh
    previous.relaunches.append({"reason": reason, "at": now_iso(), "previous_log": previous.log_path,
                                "previous_status": previous.status, "previous_failure": previous.failure,
                                "previous_exit_code": previous.exit_code})
    previous.status, previous.failure, previous.exit_code, previous.signal = "pending", None, None, None
    previous.finished_at, previous.finished_logged, previous.pid = None, False, None
    previous.config_file, previous.dataset_config_file = fresh.config_file, fresh.dataset_config_file
    return previous


@dataclass
class RunHandle:
    """A launched (or re-adopted) run. ``follow`` blocks until the trainer has ended."""

    run_dir: Path
    record: RunRecord
    stop_on_nan: bool = True
    stall_seconds: float | None = None  # no new output for this long: stop and fail the run
    start_seconds: float = 120.0  # the supervisor must report the trainer's pid within this
    stop_timeout: float = 60.0
    _stop_sent_at: float | None = field(default=None, repr=False)

    @property
    def files(self) -> RunFiles:
        return RunFiles(self.run_dir)

    def follow(self, on_event: EventCallback | None = None, poll_seconds: float = 0.5) -> RunRecord:
        record = load_run_record(self.run_dir)
        parser = LogParser()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        log_path = Path(record.log_path or "")
        stream = None
        began = last_output = time.monotonic()
        vanished: str | None = None
        try:
            while True:
                exit_info = self.files.read(self.files.exit)  # read before draining: the log is complete
                trainer = self.files.read(self.files.trainer)
                dirty = False
                if trainer and (record.pid != trainer.get("pid") or record.status == "pending"):
                    record.pid, record.status, dirty = trainer.get("pid"), "running", True
                if stream is None and log_path.is_file():
                    stream = open(log_path, "rb")
                if stream is not None and self._drain(stream, decoder, parser, record, on_event):
                    last_output, dirty = time.monotonic(), True
                if dirty:
                    record.save()
                if exit_info is not None:
                    break
                waited = time.monotonic()
                if parser.failure and parser.failure.cause == "nan_loss" and self.stop_on_nan:
                    self._stop_trainer(trainer, "nan_loss")
                if self.stall_seconds and waited - last_output > self.stall_seconds:
                    self._stop_trainer(trainer, "stalled")
                if trainer is None and waited - began > self.start_seconds:
                    vanished = "the trainer did not start"
                    break
                if trainer and not pid_alive(trainer.get("pid")) and not pid_alive(trainer.get("supervisor_pid")):
                    if self.files.read(self.files.exit) is None:
                        vanished = "the trainer and its supervisor are gone without an exit status (killed)"
                        break
                    continue
                time.sleep(poll_seconds)
            if stream is not None:
                self._drain(stream, decoder, parser, record, on_event)
            for event in parser.feed(decoder.decode(b"", final=True)) + parser.close():
                self._apply(event, record, on_event)
        finally:
            if stream is not None:
                stream.close()
        self._finalize(record, self.files.read(self.files.exit), vanished)
        record.save()
        self.record = record
        return record

    def _drain(self, stream: Any, decoder: Any, parser: LogParser, record: RunRecord,
               on_event: EventCallback | None) -> bool:
        grew = False
        while chunk := stream.read(1 << 20):
            grew = True
            for event in parser.feed(decoder.decode(chunk)):
                self._apply(event, record, on_event)
        return grew

    def _apply(self, event: LogEvent, record: RunRecord, on_event: EventCallback | None) -> None:
        record.apply(event)
        if isinstance(event, SamplesGenerated) or record.samples:
            _refresh_samples(record)
        if on_event is not None:
            on_event(event, record)

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
        _refresh_samples(record)
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
    if stop_reason == "user":
        return "stopped", None
    if log_failure is not None and (stop_reason != "stalled" or log_failure["cause"] != "traceback"):
        return "failed", log_failure
    if stop_reason == "stalled":
        return "failed", {"cause": "unknown", "message": f"stalled: no output for {stall_seconds:g} s; stopped",
                          "lines": []}
    if supervisor_error:
        return "failed", {"cause": "unknown", "message": supervisor_error, "lines": []}
    if signal_number:
        name = signal.Signals(signal_number).name if signal_number in signal.Signals._value2member_map_ else ""
        return "failed", {"cause": "killed_by_signal", "message": f"trainer killed by signal {signal_number} "
                          f"{name}".strip(), "lines": []}
    if vanished:
        cause = "killed_by_signal" if "killed" in vanished else "unknown"
        return "failed", {"cause": cause, "message": vanished, "lines": []}
    if finished_logged:
        return "failed", {"cause": "unknown", "message": "`model saved.` was logged but the final checkpoint "
                          "is not on disk", "lines": []}
    return "failed", {"cause": "unknown", "message": f"the trainer exited with code {exit_code} without "
                      "`model saved.`", "lines": []}


def _refresh_samples(record: RunRecord) -> None:
    samples, _ = find_samples(record.run_dir, record.output_name)
    by_epoch: dict[str, list[str]] = {}
    for sample in samples:
        if sample.epoch is not None:
            by_epoch.setdefault(str(sample.epoch), []).append(str(sample.path))
    for epoch, paths in by_epoch.items():
        record.samples[epoch] = paths


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except OSError:
        pass


def stop_run(run_dir: str | Path, *, timeout: float = 60.0, reason: str = "user") -> RunRecord:
    """Interrupt the trainer (SIGINT), kill it after ``timeout`` s, and complete ``run.json``."""
    run_dir = Path(run_dir)
    record = load_run_record(run_dir)
    files = RunFiles(run_dir)
    if not record.is_active:
        return record
    files.request_stop(reason)
    trainer = files.read(files.trainer) or {}
    pid = trainer.get("pid")
    for signum, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        if not pid_alive(pid):
            break
        _signal(pid, signum)
        deadline = time.monotonic() + wait
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    handle = RunHandle(run_dir=run_dir, record=record, start_seconds=5.0)
    return handle.follow(poll_seconds=0.2)


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
        "cuda_oom": "out of GPU memory: lower the batch size (use --retry-oom to halve it and double "
                    "gradient accumulation), enable gradient_checkpointing, or cache latents",
        "nan_loss": "the loss became NaN/inf: lower the learning rate, use bf16 instead of fp16, or check "
                    "the images",
        "import_error": "a Python package is missing in the trainer's environment (see the message)",
        "no_data": "sd-scripts found no images: check image_dir in the dataset config and the kohya folder "
                   "layout ({repeats}_{name}/)",
        "killed_by_signal": "the trainer was killed from outside (the system's OOM killer, or a person)",
    }.get(cause or "")
