"""The queue's pure core: order, GPU fit, cancel, re-queue after a dead runner, the file's shape."""

from __future__ import annotations

import pytest

from orchestrator.common.errors import UserInputError
from orchestrator.queue import QueueState, QueueStore


def _queue(*gpu_counts: int) -> QueueState:
    state = QueueState()
    for count in gpu_counts:
        state.add("train", "p", gpu_count=count, now="t0", folder_for=str, log_for=str)
    return state


def test_a_free_gpu_takes_the_first_queued_job_that_fits() -> None:
    state = _queue(2, 1, 1)
    assert state.next_for([0]).id == 2, "a 1-GPU job does not wait behind a 2-GPU one"
    assert state.next_for([0, 1]).id == 1
    state.start(1, [0, 1], runner="r", now="t1")
    assert state.busy_gpus() == {0, 1} and state.next_for([2]).id == 2


def test_a_failed_job_is_recorded_and_the_next_one_is_still_offered() -> None:
    state = _queue(1, 1)
    state.start(1, [0], runner="r", now="t1")
    state.finish(1, 3, now="t2", reason="failed: cuda_oom")
    assert (state.job(1).state, state.job(1).reason) == ("failed", "failed: cuda_oom")
    assert state.next_for([0]).id == 2


def test_cancel_ends_a_queued_job_and_marks_a_running_one_for_its_runner() -> None:
    state = _queue(1, 1)
    state.start(1, [0], runner="r", now="t1")
    assert state.cancel(2, now="t2").state == "cancelled" and state.next_for([1]) is None
    assert state.cancel(1, now="t2").state == "running" and state.job(1).cancel_requested
    assert state.finish(1, 130, now="t3").state == "cancelled"
    with pytest.raises(UserInputError, match="already ended"):
        state.cancel(1, now="t4")


def test_jobs_of_a_dead_runner_are_queued_again_in_their_turn() -> None:
    state = _queue(1, 1)
    state.start(1, [0], runner="dead", now="t1")
    state.start(2, [1], runner="alive", now="t1")
    requeued = state.requeue_interrupted(lambda runner: runner == "alive")
    assert [job.id for job in requeued] == [1]
    assert state.job(1).state == "queued" and state.job(1).attempts == 1 and "died" in state.job(1).reason
    assert state.job(2).state == "running"
    assert state.next_for([0]).id == 1


def test_the_queue_file_round_trips_and_a_damaged_one_is_named(tmp_path) -> None:
    store = QueueStore(tmp_path / "queue.json")
    with store.edit() as state:
        state.add("search", "luca", options=["--trials", "3"], now="t0", folder_for=lambda n: f"f{n}",
                  log_for=lambda n: f"l{n}")
    again = store.read()
    assert again.job(1).options == ["--trials", "3"] and again.next_id == 2
    assert '"state": "queued"' in store.path.read_text(), "a person can read the file"
    store.path.write_text('{"format": 1, "jobs": [{"id": 1, "kind": "train", "preset": "p", "colour": 1}]}')
    with pytest.raises(UserInputError, match=r"queue\.json.*unknown keys \['colour'\]"):
        store.read()
    store.path.write_text("{not json")
    with pytest.raises(UserInputError, match="does not parse"):
        store.read()
