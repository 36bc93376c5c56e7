"""Start a rendered run in tmux after its pre-flight checks, and relaunch one (OOM retry).

``start_training`` returns at once with a :class:`~orchestrator.runner.handle.RunHandle`; the trainer
runs under ``supervisor.py`` in a tmux session, so it outlives the orchestrator.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from orchestrator.common.atomic import atomic_write_json
from orchestrator.common.errors import PipelineError, UserInputError
from orchestrator.config.paths import ProjectPaths
from orchestrator.kohya.command import (
    build_training_command,
    halve_batch_size,
    newest_state_dir,
    parse_gpus,
)
from orchestrator.kohya.render import RenderedRun, write_rendered
from orchestrator.runner import preflight as checks
from orchestrator.runner import tmux
from orchestrator.runner.files import RunFiles, RunLock
from orchestrator.runner.handle import EventCallback, RunHandle
from orchestrator.runner.record import RunRecord, load_run_record, now_iso

log = logging.getLogger(__name__)

SUPERVISOR = Path(__file__).with_name("supervisor.py")


class PreflightFailed(PipelineError):
    """One line per problem; nothing was started."""

    def __init__(self, report: checks.PreflightReport) -> None:
        self.report = report
        super().__init__("pre-flight failed:\n" + "\n".join(f"  - {p}" for p in report.problems))


def run_preflight(rendered: RenderedRun, *, paths: ProjectPaths, gpus: str | Sequence[int] | None = None,
                  resume: bool = False, allow_cpu: bool = False,
                  state_reserve_bytes: int = 0) -> checks.PreflightReport:
    report = checks.merge(
        checks.check_tools(sd_scripts=paths.sd_scripts, trainer_python=paths.trainer_python,
                           script_name=rendered.script_name),
        checks.check_dataset(rendered.dataset),
        checks.check_model_files(rendered.family, rendered.training),
        checks.check_vram(rendered.min_vram_gb, parse_gpus(gpus), allow_cpu=allow_cpu),
        checks.check_gpu_locks(parse_gpus(gpus)),
        checks.check_disk(rendered.run_dir, checks.estimate_checkpoint_bytes(rendered.training,
                                                                             rendered.family),
                          reserved_bytes=state_reserve_bytes),
    )
    from orchestrator.kohya.check import validate_rendered
    from orchestrator.kohya.validate import errors

    report.problems += [f"config: {problem}" for problem in errors(validate_rendered(rendered,
                                                                                     paths_must_exist=False))]
    record = _existing_record(rendered.run_dir)
    if record is not None and record.is_active and RunFiles(rendered.run_dir).trainer_alive():
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


def start_training(rendered: RenderedRun, *, paths: ProjectPaths, session_name: str | None = None,
                   gpus: str | Sequence[int] | None = None, resume: bool = False, allow_cpu: bool = False,
                   tmux_socket: str | None = None, run_checks: bool = True,
                   relaunch_reason: str | None = None, write_config: bool = False,
                   state_reserve_bytes: int = 0) -> RunHandle:
    """Pre-flight, then launch ``rendered`` in a new tmux session; returns without waiting.

    ``write_config``: write ``rendered``'s config files here, once the run folder's lock is held (a caller
    that rendered with ``write=False``); otherwise the files on disk are launched as they are.
    ``state_reserve_bytes``: disk the pre-flight keeps free for paused runs' states (``state_budget.py``)."""
    run_dir = Path(rendered.run_dir)
    tmux_socket = tmux_socket if tmux_socket is not None else tmux.default_socket()
    if run_checks:
        report = run_preflight(rendered, paths=paths, gpus=gpus, resume=resume, allow_cpu=allow_cpu,
                               state_reserve_bytes=state_reserve_bytes)
        for line in report.warnings:
            log.warning("%s", line)
        if not report.ok:
            raise PreflightFailed(report)
    files = RunFiles(run_dir)
    with RunLock(run_dir):
        if _existing_record(run_dir) is not None and RunFiles(run_dir).trainer_alive():
            raise UserInputError("a trainer is still running in this folder", path=run_dir)
        if write_config:  # under the folder's lock: a launch refused by it never replaces the winner's config
            write_rendered(rendered)
        state_dir = newest_state_dir(run_dir, rendered.output_name) if resume else None
        if resume and state_dir is None:
            raise UserInputError("nothing to resume: no *-state folder", path=run_dir)
        command = build_training_command(
            trainer_python=paths.trainer_python, sd_scripts=paths.sd_scripts,
            script_name=rendered.script_name, config_file=rendered.config_file,
            gpus=parse_gpus(gpus), resume_state=state_dir)
        if session_name is None:
            session = tmux.free_session_name(rendered.output_name, tmux_socket)
        else:
            session = session_name
            if tmux.session_exists(session, tmux_socket):
                raise UserInputError(f"tmux session {session!r} already exists", key="session",
                                     hint=f"attach with `tmux attach -t {session}`, kill it, or pass "
                                          "--session OTHER")
        log_path = claim_log_path(Path(paths.logs_dir).resolve(), rendered.output_name)
        record = _record_for_launch(rendered, previous=_existing_record(run_dir),
                                    continuing=resume or relaunch_reason is not None,
                                    reason=relaunch_reason or ("resume" if resume else None))
        record.argv = command.argv
        record.environment_set = dict(command.env)
        record.log_path = str(log_path)
        record.tmux_session = session
        record.tmux_socket = tmux_socket
        record.step_offset = _prepare_resume(state_dir, record) if state_dir else 0
        record.started_at = now_iso()
        files.clear_status()
        record.save()
        write_private_json(files.environment, {**os.environ, **command.env})
        atomic_write_json(files.spec, {"argv": command.argv, "cwd": str(command.cwd), "env": command.env,
                                       "env_file": str(files.environment), "log_path": str(log_path),
                                       "lock_path": str(files.lock), "status_dir": str(files.folder)})
        tmux.start_session(session, [sys.executable, str(SUPERVISOR), str(files.spec)],
                           cwd=command.cwd, socket_name=tmux_socket)
    return RunHandle(run_dir=run_dir, record=record)


def _prepare_resume(state_dir: Path, record: RunRecord) -> int:
    """The run's true step count at ``state_dir``, written into the state and the record rewound to it.

    sd-scripts restarts its step counter at every resume, so a state saved by a resumed segment records
    that segment's steps only (``kohya/train_state.py``); the run record's log of steps knows the truth.
    """
    from orchestrator.kohya.train_state import read_train_state, record_true_step

    state = read_train_state(state_dir)
    if state is None:
        return 0
    true_step = max(state.step, record.steps_through(state.epoch) or 0)
    record_true_step(state_dir, true_step)
    record.rewind_to(state.epoch, true_step)
    return true_step


def claim_log_path(logs_dir: Path, output_name: str) -> Path:
    """A new, empty log file ``OUTPUT_YYYYmmdd_HHMMSS[_N].log`` that no other run writes to.

    The supervisor appends to its log, so two runs of one output name started in the same second (two
    queue jobs on two GPUs, or an OOM relaunch) would otherwise share a file and read each other's
    checkpoint lines. Creating the file exclusively makes the claim atomic across processes.
    """
    logs_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{output_name}_{datetime.now().strftime('%Y%m%d_%H%M%S')}"
    for attempt in range(1, 10_000):
        candidate = logs_dir / (f"{stem}.log" if attempt == 1 else f"{stem}_{attempt}.log")
        try:
            with open(candidate, "x", encoding="utf-8"):
                return candidate
        except FileExistsError:
            continue
    raise PipelineError(f"{logs_dir}: no free log name for {stem} after 9,999 tries")


def write_private_json(path: Path, data: dict[str, str]) -> None:
    """``data`` as JSON readable by its owner only (an environment holds tokens), replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _record_for_launch(rendered: RenderedRun, *, previous: RunRecord | None, continuing: bool,
                       reason: str | None) -> RunRecord:
    fresh = RunRecord(output_name=rendered.output_name, run_dir=str(rendered.run_dir),
                      config_file=str(rendered.config_file),
                      dataset_config_file=str(rendered.dataset_config_file))
    if previous is None or not continuing:
        return fresh
    _note_relaunch(previous, reason or "relaunch", keep_progress=reason == "resume")
    previous.config_file, previous.dataset_config_file = fresh.config_file, fresh.dataset_config_file
    return previous


def _note_relaunch(record: RunRecord, reason: str, *, keep_progress: bool) -> None:
    """Move the ended attempt into ``relaunches``; a fresh (non-resume) attempt starts an empty series."""
    record.relaunches.append({"reason": reason, "at": now_iso(), "previous_log": record.log_path,
                              "previous_status": record.status, "previous_failure": record.failure,
                              "previous_exit_code": record.exit_code, "previous_argv": record.argv})
    record.status, record.failure, record.exit_code, record.signal = "pending", None, None, None
    record.finished_at, record.finished_logged, record.pid, record.stop_reason = None, False, None, None
    if not keep_progress:
        record.step_offset = 0
        record.summary, record.epochs, record.losses, record.validation_losses = {}, [], [], []
        record.checkpoints, record.samples, record.states = {}, {}, {}


def relaunch_run(run_dir: Path, *, reason: str) -> RunHandle:
    """Start the run's stored command again (same argv and config files) in a new session and log."""
    files = RunFiles(run_dir)
    with RunLock(run_dir):
        if RunFiles(run_dir).trainer_alive():
            raise UserInputError("a trainer is still running in this folder", path=run_dir)
        record = load_run_record(run_dir)
        spec = files.read(files.spec)
        if spec is None:
            raise UserInputError("no launch.json: this run was never started here", path=files.spec)
        old_log = Path(record.log_path or spec["log_path"])
        log_path = claim_log_path(old_log.parent, record.output_name)
        _note_relaunch(record, reason, keep_progress=False)
        record.log_path = str(log_path)
        record.tmux_session = tmux.free_session_name(record.output_name, record.tmux_socket)
        record.started_at = now_iso()
        files.clear_status()
        record.save()
        atomic_write_json(files.spec, {**spec, "log_path": str(log_path)})
        tmux.start_session(record.tmux_session, [sys.executable, str(SUPERVISOR), str(files.spec)],
                           cwd=Path(spec["cwd"]), socket_name=record.tmux_socket)
    return RunHandle(run_dir=run_dir, record=record)


def follow_with_retry(handle: RunHandle, *, retry_oom: bool = False,
                      on_event: EventCallback | None = None, poll_seconds: float = 0.5) -> RunRecord:
    """``handle.follow``; on CUDA OOM with ``retry_oom``, relaunch once with half the batch and twice
    the gradient accumulation (the same effective batch), recorded in ``relaunches``."""
    record = handle.follow(on_event, poll_seconds)
    already_retried = any(str(r.get("reason", "")).startswith("cuda_oom") for r in record.relaunches)
    if not retry_oom or already_retried or (record.failure or {}).get("cause") != "cuda_oom":
        return record
    change = halve_batch_size(Path(record.config_file or ""), Path(record.dataset_config_file or ""))
    if change is None:
        log.warning("CUDA OOM with batch size 1: nothing to halve, not retrying")
        return record
    log.warning("CUDA out of memory: relaunching once with %s", change.describe())
    retry = relaunch_run(handle.run_dir, reason=f"cuda_oom: {change.describe()}")
    retry.stop_on_nan, retry.stall_seconds = handle.stop_on_nan, handle.stall_seconds
    return retry.follow(on_event, poll_seconds)
