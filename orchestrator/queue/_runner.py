"""`queue run`: each free GPU takes the next queued job; a job is a `lora-pipeline` process of its own.

A training job runs ``lora-pipeline train PRESET --set ... --gpus N --wait --out FOLDER`` (a run folder
like any ``train``'s: ``lora-pipeline monitor FOLDER`` works on it), a search job ``lora-pipeline search
run --base-config PRESET --out FOLDER --gpus N`` (``--parallel-gpus`` when it takes several GPUs). The
runner holds a training job's GPU locks (``runner/gpu_lock.py``) while it runs; a search takes its own.

A job that fails is recorded with the last line of its log and the queue goes on. Ctrl-C stops the
runner and its job processes, not their trainers (they live on in tmux): the next ``queue run`` finds
those jobs "running" under a dead runner, queues them again, and re-attaches (a training whose trainer
still runs is followed with ``lora-pipeline watch``; a search resumes and re-adopts its trainers).
``queue cancel ID`` of a running job: the runner interrupts the job and stops its trainers.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.common.process import ProcessIdentity
from orchestrator.queue._state import Job
from orchestrator.queue._store import QueueStore
from orchestrator.runner.gpu_lock import GpuBusy, GpuLock, gpu_holder
from orchestrator.runner.record import now_iso

log = logging.getLogger(__name__)
STOP_TIMEOUT = 120.0  # seconds a cancelled job's trainer gets to stop cleanly before it is killed


def runner_identity() -> str:
    return ProcessIdentity.current().as_text()


def runner_alive(identity: str) -> bool:
    """True when the `queue run` process named by ``identity`` still lives (a reused pid is not it)."""
    runner = ProcessIdentity.parse(identity)
    return runner is not None and runner.is_live_local_process()


def job_argv(job: Job, *, python: str = sys.executable) -> list[str]:
    """The `lora-pipeline` command line of one attempt at ``job`` on ``job.gpus``."""
    gpus = ",".join(str(gpu) for gpu in job.gpus)
    base = [python, "-m", "orchestrator"]
    if job.kind == "search":
        gpu_option = "--parallel-gpus" if len(job.gpus) > 1 else "--gpus"
        return [*base, "search", "run", "--base-config", job.preset, "--out", job.folder, gpu_option, gpus,
                *job.options]
    if _trainer_still_runs(Path(job.folder)):  # an earlier attempt's trainer outlived its runner
        return [*base, "watch", job.folder]
    overrides = [part for item in job.overrides for part in ("--set", item)]
    # Named per job and attempt: two jobs of one preset starting at once would both find "PRESET" free.
    session = re.sub(r"[^A-Za-z0-9_-]", "_", f"queue_job_{job.id:03d}_{Path(job.preset).stem}_{job.attempts}")
    return [*base, "train", job.preset, *overrides, "--out", job.folder, "--gpus", gpus, "--session", session,
            "--wait", *job.options]


def _trainer_still_runs(run_dir: Path) -> bool:
    from orchestrator.runner.files import RunFiles

    return (run_dir / "run.json").is_file() and RunFiles(run_dir).trainer_alive()


def stop_active_runs(folder: Path, *, timeout: float = STOP_TIMEOUT) -> list[Path]:
    """Stop every run under ``folder`` whose trainer still runs (a cancelled training or search)."""
    from orchestrator.runner import load_run_record, stop_run

    stopped = []
    for record_file in sorted(folder.glob("**/run.json")):
        try:
            active = load_run_record(record_file.parent).is_active
        except Exception:  # noqa: BLE001 - a damaged record is not ours to repair here
            continue
        if active:
            stop_run(record_file.parent, timeout=timeout, reason="cancelled")
            stopped.append(record_file.parent)
    return stopped


@dataclass
class RunningJob:
    job_id: int
    folder: Path
    process: subprocess.Popen
    lock: GpuLock | None
    interrupted: bool = False


@dataclass
class RunnerSummary:
    finished: dict[int, str] = field(default_factory=dict)  # job id -> its end state

    def count(self, state: str) -> int:
        return sum(1 for end in self.finished.values() if end == state)


class QueueRunner:
    """Works ``store``'s queue on ``gpus`` until nothing is queued or running (``keep_waiting``: for ever)."""

    def __init__(self, store: QueueStore, gpus: Sequence[int], *, argv_for: Callable[[Job], list[str]] = job_argv,
                 poll_seconds: float = 1.0, keep_waiting: bool = False, say: Callable[[str], None] = print,
                 env: dict[str, str] | None = None, stop_timeout: float = STOP_TIMEOUT) -> None:
        self.store, self.gpus, self.argv_for = store, list(gpus), argv_for
        self.poll_seconds, self.keep_waiting, self.say, self.stop_timeout = poll_seconds, keep_waiting, say, stop_timeout
        self.env = dict(env if env is not None else os.environ)
        self.identity = runner_identity()
        self.running: dict[int, RunningJob] = {}
        self.summary = RunnerSummary()

    def run(self) -> RunnerSummary:
        try:
            while True:
                self._collect_exits()
                with self.store.edit() as state:
                    for job in state.requeue_interrupted(runner_alive):
                        self.say(f"job {job.id}: {job.reason or job.state}")
                    self._interrupt_cancelled(state)
                    self._start_jobs(state)
                    pending = any(job.state == "queued" for job in state.jobs)
                if not self.running and not pending and not self.keep_waiting:
                    return self.summary
                time.sleep(self.poll_seconds)
        except KeyboardInterrupt:
            # The jobs stay "running" in the file: the next `queue run` re-attaches to them.
            for running in self.running.values():
                _signal_group(running.process, signal.SIGINT)
            for running in self.running.values():
                _wait(running.process, 30.0)
                if running.lock is not None:
                    running.lock.release()
            raise

    def _free_gpus(self, busy: set[int]) -> list[int]:
        return [gpu for gpu in self.gpus if gpu not in busy and gpu_holder(gpu) is None]

    def _start_jobs(self, state) -> None:  # type: ignore[no-untyped-def]
        free = self._free_gpus(state.busy_gpus())
        while (job := state.next_for(free)) is not None:
            gpus, free = free[:job.gpu_count], free[job.gpu_count:]
            lock = None
            if job.kind == "train":  # a search takes its GPUs' locks itself
                try:
                    lock = GpuLock(gpus, purpose=f"queue job {job.id} ({job.preset})").__enter__()
                except GpuBusy as error:
                    self.say(f"job {job.id}: {error}; trying again later")
                    continue
            state.start(job.id, gpus, runner=self.identity, now=now_iso())
            Path(job.log).parent.mkdir(parents=True, exist_ok=True)
            argv = self.argv_for(job)
            with open(job.log, "a", encoding="utf-8") as handle:
                handle.write(f"--- attempt {job.attempts} on GPU {','.join(map(str, gpus))}: {' '.join(argv)}\n")
                handle.flush()
                try:
                    # A session of its own: a cancel interrupts the job's whole process group (a parallel
                    # search's workers too), and a Ctrl-C here reaches the jobs only through the runner.
                    process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, env=self.env, start_new_session=True,
                                               preexec_fn=_die_with_parent)
                except OSError as error:
                    if lock is not None:
                        lock.release()
                    state.finish(job.id, 127, now=now_iso(), reason=f"could not start: {error}")
                    continue
            self.running[job.id] = RunningJob(job.id, Path(job.folder), process, lock)
            self.say(f"job {job.id} ({job.kind} {job.preset}) started on GPU {','.join(map(str, gpus))} "
                     f"(folder {job.folder}, log {job.log})")

    def _interrupt_cancelled(self, state) -> None:  # type: ignore[no-untyped-def]
        for running in self.running.values():
            if state.job(running.job_id).cancel_requested and not running.interrupted:
                running.interrupted = True
                _signal_group(running.process, signal.SIGINT)
                self.say(f"job {running.job_id}: cancelling")

    def _collect_exits(self) -> None:
        for job_id, running in list(self.running.items()):
            code = running.process.poll()
            if code is None:
                continue
            del self.running[job_id]
            if running.interrupted:
                stop_active_runs(running.folder, timeout=self.stop_timeout)
            if running.lock is not None:
                running.lock.release()
            with self.store.edit() as state:
                job = state.finish(job_id, code, now=now_iso(), reason=_last_line(Path(state.job(job_id).log)))
            self.summary.finished[job_id] = job.state
            self.say(f"job {job_id}: {job.state}" + (f" ({job.reason})" if job.state == "failed" else ""))


def _die_with_parent() -> None:
    """In the job's process before exec: a runner killed with kill -9 takes its job processes with it
    (Linux), so the next runner, not a stray follower, re-attaches to their trainers."""
    import ctypes

    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except OSError:
        pass


def _wait(process: subprocess.Popen, timeout: float) -> None:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait()


_CAUSE_PREFIXES = ("error:", "failed:", "pre-flight:", "stopped")


def _last_line(path: Path) -> str | None:
    """The job's cause as its command printed it (`error: ...`, `failed: cause: ...`), else its last line."""
    try:
        lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return None
    causes = [line for line in lines if line.startswith(_CAUSE_PREFIXES)]
    return (causes or lines or [""])[-1][-300:] or None
