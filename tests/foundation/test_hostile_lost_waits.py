"""Class 3 of issue 29: a wait that can never end is refused at once, and every wait says what it waits for.

The rule: a queued job that no GPU of the runner could ever take (``--gpus ''``, more GPUs than it has)
is refused before anything starts, naming the job and the option; a wait that an event can end (a GPU or
a file lock another process holds) says what it waits for and ends when the holder lets go. Each case is
bounded by a timeout, asserts no traceback, and that the queue file is byte for byte as it was.
"""

from __future__ import annotations

import json
import logging
import sys
import threading

import pytest

from orchestrator.common.file_lock import FileLock
from orchestrator.queue._runner import QueueRunner
from orchestrator.queue._store import QueueStore
from orchestrator.runner.gpu_lock import GPU_LOCK_DIR_ENV, GpuLock
from tests.foundation.test_hostile_inputs import PRESET, _run_main, _snapshot


def _job(job_id: int, gpu_count: int = 1, kind: str = "train", state: str = "queued") -> dict:
    return {"id": job_id, "kind": kind, "preset": PRESET, "gpu_count": gpu_count, "state": state,
            "folder": f"runs/job_{job_id}", "log": f"logs/job_{job_id}.log"}


def _queue(*jobs: dict) -> str:
    return json.dumps({"format": 1, "next_id": 1 + max(j["id"] for j in jobs), "jobs": list(jobs)})


def _run(gpus: str, *extra: str) -> list[str]:
    return ["queue", "run", "--gpus", gpus, "--queue", "{tmp}/queue.json", "--poll", "0.05", *extra]


# name -> (queue file, command, what the refusal names)
CASES: dict[str, tuple[str, list[str], str]] = {
    "no_gpus_one_job": (_queue(_job(1)), _run(""), "job 1 needs 1 GPU"),
    "no_gpus_keep_waiting": (_queue(_job(1)), _run("", "--keep-waiting"), "job 1 needs 1 GPU"),
    "two_gpu_job_one_gpu_runner": (_queue(_job(1, 2)), _run("0"), "job 1 needs 2 GPUs"),
    "three_gpu_job_two_gpu_runner": (_queue(_job(1, 3)), _run("0,1"), "job 1 needs 3 GPUs"),
    "two_gpu_search_one_gpu_runner": (_queue(_job(1, 2, kind="search")), _run("1"), "job 1 needs 2 GPUs"),
    "impossible_job_behind_a_possible_one": (_queue(_job(1, 1), _job(2, 4)), _run("0"), "job 2 needs 4 GPUs"),
    "impossible_job_before_a_possible_one": (_queue(_job(1, 4), _job(2, 1)), _run("0"), "job 1 needs 4 GPUs"),
    "impossible_job_keep_waiting": (_queue(_job(1, 2)), _run("0", "--keep-waiting"), "--gpus gives 1"),
    "two_impossible_jobs_both_named": (_queue(_job(1, 2), _job(3, 5)), _run("7"), "job 3 needs 5 GPUs"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_wait_no_event_can_end_is_refused_at_once(name, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(GPU_LOCK_DIR_ENV, str(tmp_path / "gpu_locks"))
    queue, argv, named = CASES[name]
    (tmp_path / "queue.json").write_text(queue)
    before = _snapshot(tmp_path)
    code = _run_main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    output = "".join(capsys.readouterr())
    assert code != 0, output
    assert named in output and "gpus" in output, output
    assert "Traceback" not in output
    after = {k: v for k, v in _snapshot(tmp_path).items() if not k.endswith(".lock")}
    assert after == {k: v for k, v in before.items() if not k.endswith(".lock")}
    assert not (tmp_path / "runs").exists(), "nothing was started"


@pytest.mark.timeout(60)
def test_a_job_waiting_for_a_gpu_another_process_holds_says_so_and_starts_when_it_is_free(tmp_path, monkeypatch):
    monkeypatch.setenv(GPU_LOCK_DIR_ENV, str(tmp_path / "gpu_locks"))
    store = QueueStore(tmp_path / "queue.json")
    store.path.write_text(_queue({**_job(1), "folder": str(tmp_path / "run"), "log": str(tmp_path / "job.log")}))
    said: list[str] = []
    held = GpuLock([0], purpose="someone's notebook").__enter__()
    threading.Timer(0.5, held.release).start()
    summary = QueueRunner(store, [0], argv_for=lambda job: [sys.executable, "-c", "pass"], poll_seconds=0.05,
                          say=said.append).run()
    assert any("waiting: job 1 waits for GPU 0 (held by" in line and "notebook" in line for line in said), said
    assert summary.finished == {1: "succeeded"}
    assert sum("waiting:" in line for line in said) == 1, "said once, not on every poll"


@pytest.mark.timeout(60)
def test_a_queue_edit_waiting_for_the_queue_lock_names_its_holder(tmp_path, caplog, capsys):
    (tmp_path / "queue.json").write_text(_queue(_job(1)))
    lock = FileLock(tmp_path / "queue.json.lock", holder="pid 4242 (a queue run)").acquire()
    threading.Timer(0.5, lock.release).start()
    with caplog.at_level(logging.WARNING):
        code = _run_main(["queue", "cancel", "1", "--queue", str(tmp_path / "queue.json")])
    assert code == 0
    assert "waiting for" in caplog.text and "pid 4242" in caplog.text, caplog.text
    assert json.loads((tmp_path / "queue.json").read_text())["jobs"][0]["state"] == "cancelled"


def test_the_table_has_at_least_eight_cases():
    assert len(CASES) >= 8
