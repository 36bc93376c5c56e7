"""The real executor pauses a trial at a sample epoch and takes it up again (runner, real tmux, the fake
sd-scripts, which restarts its step counter on a resume as the real one does: sd-scripts #2171)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.search import test_kohya_executor as executor_tests
from tests.search.test_kohya_executor import _executor, _request, never_stop

# The executor tests' world (real tmux, the fake sd-scripts, references) and tiny CLIP, shared.
kohya_world = executor_tests.kohya_world
tiny_encoder = executor_tests.tiny_encoder

pytestmark = pytest.mark.timeout(240)
STEPS_PER_EPOCH = 6  # 3 images repeated twice (2_luca), batch 1


@pytest.fixture(autouse=True)
def paced_trainer(kohya_world, monkeypatch: pytest.MonkeyPatch) -> None:  # after the world's 0.05 s
    # Slow enough that a pause asked for when epoch 2 starts reaches the trainer before it has finished.
    monkeypatch.setenv("FAKE_SD_SCRIPTS_STEP_SECONDS", "0.3")


def _record(request) -> dict:
    return json.loads((request.run_dir / "run.json").read_text())


def _states(request) -> list[str]:
    return sorted(path.name for path in request.run_dir.glob("*-state"))


def _reporter(seen: list[int]):
    return lambda epoch, score, validation_loss=None: seen.append(epoch) or False


def test_a_trial_paused_twice_ends_with_every_epoch_and_step_once(kohya_world, tiny_encoder, tmp_path) -> None:
    executor = _executor(kohya_world, tiny_encoder)
    request = _request(tmp_path)
    reported: list[int] = []

    first = executor.run(replace(request, until_epoch=1), _reporter(reported))
    assert first.failure_cause is None and first.paused_at == 1 and not first.stopped_early
    assert sorted(first.epoch_scores) == [1] and reported == [1]
    assert _states(request) == ["trial_0000-000001-state"] and executor.state_bytes(request) > 0
    assert not (request.run_dir / "trial_0000.safetensors").exists()

    second = executor.run(replace(request, resume_from=1, until_epoch=2), _reporter(reported))
    assert second.failure_cause is None and second.paused_at == 2
    assert sorted(second.epoch_scores) == [2] and reported == [1, 2]
    assert _states(request) == ["trial_0000-000002-state"], "only the newest state is kept"
    # sd-scripts wrote the resumed segment's own 6 steps into that state; the resume corrects them to 12.
    third = executor.run(replace(request, resume_from=2), _reporter(reported))
    assert third.failure_cause is None and third.paused_at is None and not third.stopped_early
    assert sorted(third.epoch_scores) == [3] and reported == [1, 2, 3]

    record = _record(request)
    assert record["status"] == "succeeded"
    assert [loss["step"] for loss in record["losses"]] == list(range(1, 3 * STEPS_PER_EPOCH + 1))
    assert [entry["epoch"] for entry in record["epochs"]] == [1, 2, 3]
    assert all(entry["wall_seconds"] is not None for entry in record["epochs"])
    # The paused segment had begun epoch 2 when it stopped: its time counts from the segment that trained it.
    epoch_2 = next(entry for entry in record["epochs"] if entry["epoch"] == 2)
    assert epoch_2["started_at"] >= record["relaunches"][0]["at"]
    assert sorted(record["checkpoints"]) == ["1", "2", "3"] and sorted(record["samples"]) == ["0", "1", "2", "3"]
    assert [r["reason"] for r in record["relaunches"]] == ["resume", "resume"]
    assert _states(request) == [] and executor.state_bytes(request) == 0, "a finished run keeps no state"
    assert third.best_epoch in (1, 2, 3) and Path(third.checkpoint).is_file()
    # The base model's samples (epoch 0) are drawn once, before the first segment, never by a resume.
    before = sorted(p.name for p in (request.run_dir / "sample").glob("trial_0000_e000000_*"))
    assert len(before) == 2


def test_the_third_segment_starts_at_the_epoch_after_its_state(kohya_world, tiny_encoder, tmp_path) -> None:
    executor = _executor(kohya_world, tiny_encoder)
    request = _request(tmp_path)
    executor.run(replace(request, until_epoch=1), never_stop)
    executor.run(replace(request, resume_from=1, until_epoch=2), never_stop)
    state = json.loads((request.run_dir / "trial_0000-000002-state" / "train_state.json").read_text())
    assert state == {"current_epoch": 2, "current_step": STEPS_PER_EPOCH}, "sd-scripts' own count (#2171)"
    executor.run(replace(request, resume_from=2), never_stop)
    log = Path(_record(request)["log_path"]).read_text()
    assert "epoch 2/3" not in log and "epoch 3/3" in log, "the last segment trained epoch 2 again"
    assert _record(request)["step_offset"] == 2 * STEPS_PER_EPOCH


def test_a_stop_asked_by_the_report_is_a_pause_that_can_continue(kohya_world, tiny_encoder, tmp_path) -> None:
    executor = _executor(kohya_world, tiny_encoder)
    request = _request(tmp_path)
    stopped = executor.run(request, lambda epoch, score, validation_loss=None: epoch >= 1)
    assert stopped.stopped_early and stopped.paused_at == 1 and stopped.failure_cause is None
    resumed = executor.run(replace(request, resume_from=1), never_stop)
    assert resumed.failure_cause is None and sorted(resumed.epoch_scores) == [2, 3]


def test_a_discarded_state_cannot_be_resumed_and_says_why(kohya_world, tiny_encoder, tmp_path) -> None:
    executor = _executor(kohya_world, tiny_encoder)
    request = _request(tmp_path)
    executor.run(replace(request, until_epoch=1), never_stop)
    executor.discard_state(request)
    assert executor.state_bytes(request) == 0 and _states(request) == []
    assert (request.run_dir / "trial_0000-000001.safetensors").is_file(), "checkpoints are kept"
    outcome = executor.run(replace(request, resume_from=1), never_stop)
    assert outcome.failure_cause and "cannot resume from epoch 1: no saved state" in outcome.failure_cause


def test_the_preflight_keeps_the_unused_state_budget_free(kohya_world, tiny_encoder, tmp_path) -> None:
    import shutil

    from orchestrator.search.executor import SearchAborted

    executor = _executor(kohya_world, tiny_encoder)
    executor.state_budget_bytes = shutil.disk_usage(tmp_path).free
    with pytest.raises(SearchAborted, match="kept for paused runs' states"):
        executor.run(_request(tmp_path), never_stop)
