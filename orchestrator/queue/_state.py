"""The training-job queue as data: jobs, their states and the transitions between them (pure).

A job is one `lora-pipeline train PRESET` or `lora-pipeline search run --base-config PRESET`, with its
``--set`` overrides, further options and how many GPUs it takes. States::

    queued ──start──► running ──finish──► succeeded | failed
      │                  │ (its runner died: a reboot, kill -9) ──► queued again (attempts + 1)
      └──cancel──► cancelled ◄──cancel (the runner stops it)──┘

Jobs run in the order they were added; a GPU that is free takes the first queued job that fits
(a job asking for 2 GPUs waits for 2 free ones, the 1-GPU jobs behind it do not wait for it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from orchestrator.common.errors import UserInputError

JobKind = Literal["train", "search"]
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
JOB_KINDS: tuple[str, ...] = ("train", "search")
JOB_STATES: tuple[str, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
FORMAT = 1


@dataclass
class Job:
    id: int
    kind: JobKind
    preset: str
    overrides: list[str] = field(default_factory=list)  # --set KEY=VALUE, as given
    options: list[str] = field(default_factory=list)  # more options of the job's command
    gpu_count: int = 1
    folder: str = ""  # the run folder (train) or search folder the job writes
    state: JobState = "queued"
    added_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    gpus: list[int] = field(default_factory=list)  # the GPUs of the running (or last) attempt
    runner: str | None = None  # "pid:process start time" of the `queue run` that runs it
    attempts: int = 0
    exit_code: int | None = None
    reason: str | None = None  # why it failed, was re-queued or cancelled
    cancel_requested: bool = False
    log: str = ""


@dataclass
class QueueState:
    jobs: list[Job] = field(default_factory=list)
    next_id: int = 1

    def job(self, job_id: int) -> Job:
        for job in self.jobs:
            if job.id == job_id:
                return job
        raise UserInputError(f"no job {job_id} in the queue (jobs: {', '.join(str(j.id) for j in self.jobs) or 'none'})",
                             key="id")

    # -------------------------------------------------------------------------------- transitions
    def add(self, kind: str, preset: str, *, overrides: Sequence[str] = (), options: Sequence[str] = (),
            gpu_count: int = 1, now: str, folder_for: Callable[[int], str], log_for: Callable[[int], str]) -> Job:
        if kind not in JOB_KINDS:
            raise UserInputError(f"unknown job kind {kind!r}; use {' or '.join(JOB_KINDS)}", key="kind")
        if gpu_count < 1:
            raise UserInputError(f"a job takes 1 GPU or more, not {gpu_count}", key="gpu-count")
        job = Job(id=self.next_id, kind=kind, preset=preset, overrides=list(overrides), options=list(options),  # type: ignore[arg-type]
                  gpu_count=gpu_count, added_at=now, folder=folder_for(self.next_id), log=log_for(self.next_id))
        self.jobs.append(job)
        self.next_id += 1
        return job

    def next_for(self, free_gpus: Sequence[int]) -> Job | None:
        """The first queued job that the free GPUs can take."""
        return next((job for job in self.jobs if job.state == "queued" and job.gpu_count <= len(free_gpus)), None)

    def start(self, job_id: int, gpus: Sequence[int], *, runner: str, now: str) -> Job:
        job = self.job(job_id)
        if job.state != "queued":
            raise UserInputError(f"job {job_id} is {job.state}, not queued", key="id")
        job.state, job.gpus, job.runner, job.started_at = "running", list(gpus), runner, now
        job.attempts += 1
        job.finished_at = job.exit_code = job.reason = None
        return job

    def finish(self, job_id: int, exit_code: int, *, now: str, reason: str | None = None) -> Job:
        job = self.job(job_id)
        if job.cancel_requested:
            job.state, job.reason = "cancelled", "cancelled while running; its trainer was stopped"
        elif exit_code == 0:
            job.state, job.reason = "succeeded", None
        else:
            job.state, job.reason = "failed", reason or f"exited with code {exit_code}"
        job.exit_code, job.finished_at, job.runner = exit_code, now, None
        return job

    def cancel(self, job_id: int, *, now: str) -> Job:
        """A queued job is cancelled at once; a running one is marked, and its runner stops it."""
        job = self.job(job_id)
        if job.state in FINISHED:
            raise UserInputError(f"job {job_id} already ended ({job.state}); nothing to cancel", key="id")
        if job.state == "queued":
            job.state, job.finished_at, job.reason = "cancelled", now, "cancelled before it started"
        else:
            job.cancel_requested = True
        return job

    def requeue_interrupted(self, runner_alive: Callable[[str], bool]) -> list[Job]:
        """Running jobs whose runner is gone (a reboot, kill -9) go back to the front of their turn."""
        requeued = []
        for job in self.jobs:
            if job.state == "running" and not runner_alive(job.runner or ""):
                if job.cancel_requested:
                    job.state, job.reason = "cancelled", "cancelled; its runner had died"
                else:
                    job.state = "queued"
                    job.reason = f"its runner died during attempt {job.attempts}; queued again"
                job.runner = None
                requeued.append(job)
        return requeued

    def busy_gpus(self) -> set[int]:
        return {gpu for job in self.jobs if job.state == "running" for gpu in job.gpus}

    # ----------------------------------------------------------------------------------- the file
    def to_data(self) -> dict[str, Any]:
        return {"format": FORMAT, "next_id": self.next_id, "jobs": [asdict(job) for job in self.jobs]}

    @classmethod
    def from_data(cls, data: Any, *, source: str) -> QueueState:
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("jobs"), list):
            raise UserInputError(f"not a queue file of format {FORMAT} (keys format, next_id, jobs)", path=source)
        known = {f.name for f in fields(Job)}
        jobs = []
        for index, entry in enumerate(data["jobs"]):
            if not isinstance(entry, dict) or not {"id", "kind", "preset"} <= set(entry):
                raise UserInputError(f"job #{index + 1} needs id, kind and preset", path=source, key="jobs")
            unknown = set(entry) - known
            if unknown:
                raise UserInputError(f"job #{index + 1} has unknown keys {sorted(unknown)}", path=source, key="jobs")
            for name, value in entry.items():
                problem = _field_problem(name, value)
                if problem:
                    raise UserInputError(f"job #{index + 1}: {problem}, got {value!r}", path=source,
                                         key=f"jobs.{name}")
            jobs.append(Job(**entry))
        ids = [job.id for job in jobs]
        if len(set(ids)) != len(ids):
            twice = next(i for i in ids if ids.count(i) > 1)
            raise UserInputError(f"job id {twice} is used twice", path=source, key="jobs.id")
        next_id = data.get("next_id", 1)
        if not _is_whole(next_id) or next_id < 1:
            raise UserInputError(f"must be a whole number >= 1, got {next_id!r}", path=source, key="next_id")
        return cls(jobs=jobs, next_id=max([next_id, *(job.id + 1 for job in jobs)]))


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_text_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


# What each key of a job may hold: a hand-edited queue file is refused on reading, naming the key, not
# half-way through `queue run` (or shown as a job in a state nothing can move it out of).
_FIELD_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "id": (lambda v: _is_whole(v) and v >= 1, "must be a whole number >= 1"),
    "kind": (lambda v: v in JOB_KINDS, f"must be one of {list(JOB_KINDS)}"),
    "preset": (lambda v: isinstance(v, str) and bool(v), "must be a preset name or file"),
    "overrides": (_is_text_list, "must be a list of KEY=VALUE strings"),
    "options": (_is_text_list, "must be a list of strings"),
    "gpu_count": (lambda v: _is_whole(v) and v >= 1, "must be a whole number >= 1"),
    "folder": (lambda v: isinstance(v, str), "must be a folder path"),
    "state": (lambda v: v in JOB_STATES, f"must be one of {list(JOB_STATES)}"),
    "gpus": (lambda v: isinstance(v, list) and all(_is_whole(g) and g >= 0 for g in v), "must be a list of GPU numbers"),
    "attempts": (lambda v: _is_whole(v) and v >= 0, "must be a whole number >= 0"),
    "exit_code": (_optional(_is_whole), "must be a whole number or null"),
    "cancel_requested": (lambda v: isinstance(v, bool), "must be true or false"),
}
_TEXT_OR_NULL = ("added_at", "started_at", "finished_at", "runner", "reason", "log")


def _field_problem(name: str, value: Any) -> str | None:
    if name in _TEXT_OR_NULL:
        return None if value is None or isinstance(value, str) else "must be text or null"
    check, problem = _FIELD_RULES[name]
    return None if check(value) else problem
