"""One trial per GPU on one machine: a worker process per GPU, all sharing one study without a server.

``lora-pipeline search run --parallel-gpus 0,1,2,3`` creates (or checks) the study in the parent, then
starts one ``search worker --gpus N`` process per GPU and watches them (:class:`WorkerPool`). The study
lives in a journal file (``_journal.py``) that every worker appends to; each worker is a complete search
process (ask, rules, train, score, tell) whose trainer is pinned to its GPU (``CUDA_VISIBLE_DEVICES``)
in its own tmux session. What the single search guarantees holds per worker:

* one trainer per GPU: a worker holds its GPU's lock file (``runner/gpu_lock.py``) while it lives, and
  re-adopts (or stops) what its GPU's previous worker left running before it asks for a new trial;
* resume: the same command again; each new worker re-adopts the trials that ran on its GPU;
* a dead worker: the parent starts a new one for that GPU at once (it re-adopts the trial); a worker
  dead for good leaves a trial whose heartbeat stops, and another worker fails and re-queues it once;
* exactly once: trial numbers come from the shared journal; near the end the lowest numbers keep the
  slots (``Search._is_surplus``).

Workers die with the parent (``PR_SET_PDEATHSIG``): killing the command is killing every orchestrator
of the search, as for a single search; the trainers live on in tmux and are re-adopted on the resume.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.kohya.command import parse_gpus
from orchestrator.runner.gpu_lock import GpuLock, gpu_holder

log = logging.getLogger(__name__)

SUPERVISOR_PID_ENV = "LORA_PIPELINE_SUPERVISOR_PID"
WORKER_LOGS = "workers"
GPU_WAIT_SECONDS = 30.0  # a worker of a killed command may take a moment to die and free its GPU
MAX_RESTARTS = 10  # per GPU: a worker killed again and again points at the machine, not at bad luck
_PR_SET_PDEATHSIG = 1


def worker_lock_purpose(study_name: str, output: Path) -> str:
    return f"search {study_name!r} worker in {output}"


def die_with_supervisor() -> None:
    """In a worker started by :class:`WorkerPool`: get SIGKILL when the parent dies (Linux), and exit
    at once if it is already gone (it died between starting us and this call)."""
    parent = os.environ.get(SUPERVISOR_PID_ENV)
    if not parent:
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the worker then outlives a killed parent
        log.debug("PR_SET_PDEATHSIG is not available; this worker outlives its parent")
    if os.getppid() != int(parent):
        os._exit(1)


def gpu_wait_seconds() -> float:
    """A worker started by the pool waits a moment for its GPU (its predecessor may still be dying); a
    search started by a person is told at once that the GPU is busy."""
    return GPU_WAIT_SECONDS if os.environ.get(SUPERVISOR_PID_ENV) else 0.0


def run_gpu_worker(settings: Any, executor: Any, *, on_progress: Any = None,
                   gpu_wait: float | None = None) -> Any:
    """Run one worker of a shared study on ``settings.gpus``, holding those GPUs' locks throughout."""
    from orchestrator.search.study import Search

    die_with_supervisor()
    gpus = parse_gpus(settings.gpus) or []
    with GpuLock(gpus, purpose=worker_lock_purpose(settings.study_name, settings.output),
                 wait=gpu_wait_seconds() if gpu_wait is None else gpu_wait):
        search = Search(settings, executor)  # recover_orphans (in run) comes after the GPU is ours
        return search.run(on_progress=on_progress)


def busy_gpus(gpus: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The GPUs of ``gpus`` that a live process holds, with what holds them."""
    return {gpu: holder for gpu in gpus if (holder := gpu_holder(gpu)) is not None}


@dataclass
class WorkerSlot:
    gpu: int
    log_path: Path
    process: subprocess.Popen | None = None
    started: int = 0
    exit_codes: list[int] = field(default_factory=list)
    broken: str | None = None  # why this GPU gets no new worker (its worker exited with an error)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class PoolOutcome:
    slots: list[WorkerSlot]
    done: bool

    @property
    def broken(self) -> list[WorkerSlot]:
        return [slot for slot in self.slots if slot.broken]


class WorkerPool:
    """Starts ``worker_argv(gpu)`` for each GPU and keeps one alive per GPU until the study is done.

    ``study_state()`` returns ``(work_left, done)``: work_left when the study still wants trials asked
    (fewer counted trials than the target), done when the target is reached and nothing runs or waits.
    A worker killed by a signal is started again (up to ``max_restarts`` times); one that exits with an
    error is not (its GPU is "broken": a pre-flight refusal, a wrong setting) and the others go on; one
    that exits 0 while work is left (a trial failed and re-queued after it left) is started again.
    """

    def __init__(self, gpus: Sequence[int], worker_argv: Callable[[int], list[str]], *, log_folder: Path,
                 study_state: Callable[[], tuple[bool, bool]], env: dict[str, str] | None = None,
                 poll_seconds: float = 1.0, max_restarts: int = MAX_RESTARTS,
                 on_tick: Callable[[], None] | None = None, say: Callable[[str], None] = print) -> None:
        self.slots = [WorkerSlot(gpu, log_folder / f"gpu_{gpu}.log") for gpu in gpus]
        self.worker_argv, self.study_state, self.on_tick, self.say = worker_argv, study_state, on_tick, say
        self.env = dict(env if env is not None else os.environ)
        self.poll_seconds, self.max_restarts = poll_seconds, max_restarts
        log_folder.mkdir(parents=True, exist_ok=True)

    def run(self) -> PoolOutcome:
        try:
            while True:
                self._collect_exits()
                work_left, done = self.study_state()
                live = [slot for slot in self.slots if slot.alive]
                if done and not live:
                    return PoolOutcome(self.slots, done=True)
                startable = [slot for slot in self.slots if self._should_start(slot, work_left)]
                for slot in startable:
                    self._start(slot)
                if not live and not startable:
                    return PoolOutcome(self.slots, done=done)
                if self.on_tick is not None:
                    self.on_tick()
                time.sleep(self.poll_seconds)
        finally:
            self._wait_for_live()

    def _should_start(self, slot: WorkerSlot, work_left: bool) -> bool:
        if slot.alive or slot.broken:
            return False
        if slot.started == 0:
            return True
        last = slot.exit_codes[-1] if slot.exit_codes else 0
        if last < 0:  # killed by a signal: its trial is waiting to be re-adopted on this GPU
            if slot.started > self.max_restarts:
                slot.broken = f"killed {slot.started} times (last by signal {-last})"
                return False
            return True
        return work_left

    def _start(self, slot: WorkerSlot) -> None:
        slot.started += 1
        argv = self.worker_argv(slot.gpu)
        with open(slot.log_path, "a", encoding="utf-8") as handle:
            handle.write(f"--- worker {slot.started} for GPU {slot.gpu}: {' '.join(argv)}\n")
            handle.flush()
            slot.process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env={**self.env, SUPERVISOR_PID_ENV: str(os.getpid())})
        what = "started" if slot.started == 1 else "started again"
        self.say(f"GPU {slot.gpu}: worker {what} (pid {slot.process.pid}, log {slot.log_path})")

    def _collect_exits(self) -> None:
        for slot in self.slots:
            if slot.process is None or slot.process.poll() is None:
                continue
            code = slot.process.returncode
            slot.exit_codes.append(code)
            slot.process = None
            if code > 0:
                slot.broken = f"its worker exited with code {code}: {last_line(slot.log_path)}"
                self.say(f"GPU {slot.gpu}: {slot.broken} (no new worker on this GPU)")
            elif code < 0:
                self.say(f"GPU {slot.gpu}: worker killed by signal {-code}; starting a new one")

    def _wait_for_live(self, timeout: float = 30.0) -> None:
        """On Ctrl-C the workers got the SIGINT too; give them a moment to leave cleanly."""
        deadline = time.monotonic() + timeout
        for slot in self.slots:
            if slot.process is not None:
                try:
                    slot.process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    slot.process.kill()
                    slot.process.wait()


def last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][-300:] if lines else ""


def study_state_of(study: Any, target: int, schedule: Any = None) -> tuple[bool, bool]:
    """``(work_left, done)`` of a study for :class:`WorkerPool` (see there). With a scheduler
    (``scheduled.Schedule``) its own decision says when the search ends, not the trial count: a paused run is
    work left (a worker resumes it, or closes it when the search stops)."""
    from optuna.trial import TrialState

    from orchestrator.search.results import counted_trials
    from orchestrator.search.scheduled import is_paused

    trials = study.get_trials(deepcopy=False)
    counted = counted_trials(trials)
    unfinished = [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    if schedule is not None:
        stopping = schedule.next_action().kind == "stop"
        paused = any(is_paused(t) for t in unfinished)
        return (not stopping) or paused, stopping and not unfinished
    finished_counted = [t for t in counted if t.state.is_finished()]
    return len(counted) < target, len(finished_counted) >= target and not unfinished
