"""``lora-pipeline run DIR``: the project's stages in order, each skipped while nothing it reads changed.

The rule, for every stage alike: its fingerprint hashes what it reads (``Stage.reads``) and the completion
id of the stage before it. Done with the same fingerprint and its folder still there: skipped. Otherwise it
runs; a change empties its folder first, while an interrupted attempt with the same fingerprint (a kill, a
crash, a reboot) keeps it so the stage continues (extract per film, captions per image, training re-adopted
or resumed). A redone stage gets a new completion id, so every stage after it is redone and none before.

Why a stage table and not a task library (doit, luigi, prefect): the whole need is nine stages in a line,
a fingerprint per stage and one lock; a library would bring its own state database, its own notion of a
target, and a second place where a stage's options live. The table is the pipeline, in one screen of code.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_write_json
from orchestrator.common.errors import UserInputError
from orchestrator.common.file_lock import FileLock, LockBusy
from orchestrator.config.paths import ProjectPaths
from orchestrator.project.context import NeedsPerson, RunContext, project_paths, tmux_socket_for
from orchestrator.project.init import check_inputs
from orchestrator.project.records import (
    DONE,
    FAILED,
    RUN_LOCK,
    RUNNING,
    WAITING,
    ContentHashes,
    StageRecord,
    fingerprint,
    now_iso,
    read_record,
    state_dir,
    write_record,
)
from orchestrator.project.schema import load_project
from orchestrator.project.stages import STAGES, Stage

LAST_RUN = "last_run.json"
SKIPPED = "skipped"


@dataclass
class StageOutcome:
    name: str
    status: str  # skipped | done | failed | waiting
    seconds: float = 0.0
    facts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class RunResult:
    folder: Path
    outcomes: list[StageOutcome]
    waiting: str | None = None  # the next step a person must take, when the run stopped for one

    @property
    def total_seconds(self) -> float:
        return sum(outcome.seconds for outcome in self.outcomes)

    @property
    def did_nothing(self) -> bool:
        return bool(self.outcomes) and all(outcome.status == SKIPPED for outcome in self.outcomes)


def run_lock(folder: Path) -> FileLock:
    holder = json.dumps({"pid": os.getpid(), "started_at": now_iso(), "command": f"lora-pipeline run {folder}"})
    return FileLock(state_dir(folder) / RUN_LOCK, holder=holder, wait=0.0)


def run_project(folder: str | Path, *, accept_automatic: bool = False, progress: bool = True,
                stages: tuple[Stage, ...] = STAGES, tmux_socket: str | None = None,
                machine: ProjectPaths | None = None, say: Any = print) -> RunResult:
    """Run what changed in the project at ``folder``; raises the failing stage's error.

    A second run on the same folder while one works is refused naming the first. A stop for a person's
    decision is not an error: ``RunResult.waiting`` holds the exact next step. ``machine``: the machine's
    paths (sd-scripts, trainer Python; default configs/paths.toml), whose data and output folders move
    under the project folder.
    """
    from orchestrator.config.paths import load_paths

    project = load_project(folder)
    try:
        lock = run_lock(project.folder).acquire()
    except LockBusy as busy:
        raise UserInputError(f"another run is already working on this project: {busy.holder or 'holder unknown'}",
                             path=project.folder, hint="wait for it, or see `lora-pipeline status`") from None
    try:
        check_inputs(project)
        context = RunContext(project=project, paths=project_paths(project, machine or load_paths()),
                             accept_automatic=accept_automatic, progress=progress,
                             tmux_socket=tmux_socket or tmux_socket_for(project.folder))
        return _run_stages(context, stages, say)
    finally:
        lock.release()


def _run_stages(context: RunContext, stages: tuple[Stage, ...], say: Any) -> RunResult:
    folder = context.out
    hashes = ContentHashes(folder)
    result = RunResult(folder=folder, outcomes=[])
    before = ""  # the completion id of the stage before: a redone stage redoes every one after it
    try:
        for number, stage in enumerate(stages, start=1):
            stamp = fingerprint({"reads": stage.reads(context, hashes), "after": before})
            record = read_record(folder, stage.name)
            output = stage.folder(context)
            if record is not None and record.status == DONE and record.fingerprint == stamp and output.exists():
                say(f"[{number}/{len(stages)}] {stage.name}: unchanged since {record.finished_at}, skipped")
                result.outcomes.append(StageOutcome(stage.name, SKIPPED, facts=record.facts))
                before = record.completion
                continue
            say(f"[{number}/{len(stages)}] {stage.name}: {stage.description}")
            context.continuing = (record is not None and record.fingerprint == stamp
                                  and record.status in (RUNNING, FAILED, WAITING))
            if stage.fresh and not context.continuing and output.exists():
                shutil.rmtree(output)
            outcome = _run_one(context, stage, stamp)
            result.outcomes.append(outcome)
            _write_last_run(result)
            hashes.save()
            if outcome.status == WAITING:
                result.waiting = outcome.error
                return result
            done = read_record(folder, stage.name)
            before = done.completion if done else ""
            say(f"{stage.name} done in {outcome.seconds:.1f} s")
    finally:
        hashes.save()
    if result.did_nothing:
        say("nothing to do: every stage is up to date")
    _write_last_run(result)
    return result


def _run_one(context: RunContext, stage: Stage, stamp: str) -> StageOutcome:
    folder, started_at, started = context.out, now_iso(), time.perf_counter()
    write_record(folder, StageRecord(stage=stage.name, status=RUNNING, fingerprint=stamp, started_at=started_at))
    try:
        facts = stage.run(context)
    except NeedsPerson as stop:
        write_record(folder, StageRecord(stage=stage.name, status=WAITING, fingerprint=stamp, started_at=started_at,
                                         error=str(stop)))
        return StageOutcome(stage.name, WAITING, time.perf_counter() - started, error=str(stop))
    except BaseException as error:
        cause = f"{type(error).__name__}: {error}"
        write_record(folder, StageRecord(stage=stage.name, status=FAILED, fingerprint=stamp, started_at=started_at,
                                         finished_at=now_iso(), seconds=round(time.perf_counter() - started, 2),
                                         error=cause))
        raise
    seconds = time.perf_counter() - started
    write_record(folder, StageRecord.finished(stage.name, stamp, seconds=seconds, facts=facts, started_at=started_at))
    return StageOutcome(stage.name, DONE, seconds, facts)


def _write_last_run(result: RunResult) -> Path:
    return atomic_write_json(state_dir(result.folder) / LAST_RUN, {
        "written_at": now_iso(), "waiting": result.waiting, "total_seconds": round(result.total_seconds, 2),
        "stages": [{"name": o.name, "status": o.status, "seconds": round(o.seconds, 2), "error": o.error}
                   for o in result.outcomes]})
