"""A queued job whose trainer finished while its runner was dead is recognised from its run folder
(issue 29): it is followed (``watch``), never trained again from scratch over its result."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from orchestrator.queue._runner import QueueRunner, job_argv
from orchestrator.queue._state import Job
from orchestrator.queue._store import QueueStore
from orchestrator.runner.gpu_lock import GPU_LOCK_DIR_ENV

DEAD_RUNNER = "1:1"  # pid 1 with another start time: no live `queue run`


def _run_folder(folder: Path, status: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"status": status, "output_name": "luca"}))
    (folder / "luca.safetensors").write_bytes(b"the finished result")
    return folder


@pytest.mark.parametrize(("status", "attempts", "verb"), [
    ("succeeded", 2, "watch"),  # finished while its runner was dead: followed, not trained again
    ("running", 2, "watch"),  # its runner died before the record was final: watch completes it from the log
    ("pending", 3, "watch"),
    ("failed", 2, "train"),  # a failed attempt is tried again
    ("stopped", 2, "train"),
    ("succeeded", 1, "train"),  # the first attempt: the folder is not this job's earlier run
])
def test_an_earlier_attempts_run_decides_between_watch_and_train(tmp_path, status, attempts, verb):
    folder = _run_folder(tmp_path / "run", status)
    job = Job(id=1, kind="train", preset="p", folder=str(folder), attempts=attempts)
    argv = job_argv(job, python="py")
    assert argv[3] == verb, argv


@pytest.mark.timeout(120)
def test_a_job_finished_while_its_runner_was_dead_ends_succeeded_and_keeps_its_result(tmp_path, monkeypatch):
    monkeypatch.setenv(GPU_LOCK_DIR_ENV, str(tmp_path / "gpu_locks"))
    folder = _run_folder(tmp_path / "run", "succeeded")
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    store = QueueStore(tmp_path / "queue.json")
    store.path.write_text(json.dumps({"format": 1, "next_id": 2, "jobs": [{
        "id": 1, "kind": "train", "preset": "p", "folder": str(folder), "log": str(tmp_path / "job.log"),
        "state": "running", "runner": DEAD_RUNNER, "attempts": 1, "gpus": [0]}]}))
    said: list[str] = []
    summary = QueueRunner(store, [0], argv_for=lambda job: job_argv(job, python=sys.executable), poll_seconds=0.1,
                          say=said.append).run()
    assert summary.finished == {1: "succeeded"}, (said, (tmp_path / "job.log").read_text())
    assert " watch " in (tmp_path / "job.log").read_text()
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()} == before
