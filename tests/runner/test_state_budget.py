"""Paused runs' states: their size on disk, which go over a budget, and what the pre-flight keeps free."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.common.errors import UserInputError
from orchestrator.kohya.arguments import save_plan
from orchestrator.kohya.train_state import (
    newest_state,
    pausable_arguments,
    read_train_state,
    record_true_step,
    remove_states,
)
from orchestrator.runner.preflight import check_disk, estimate_checkpoint_bytes, estimate_state_bytes
from orchestrator.runner.record import RunRecord
from orchestrator.runner.state_budget import (
    budget_bytes,
    reserve_bytes,
    run_state_bytes,
    states_to_discard,
)


def _state(folder: Path, epoch: int, step: int, payload: int = 0) -> Path:
    folder.mkdir(parents=True)
    (folder / "train_state.json").write_text(json.dumps({"current_epoch": epoch, "current_step": step}))
    (folder / "optimizer.bin").write_bytes(b"x" * payload)
    return folder


def test_a_runs_state_size_is_every_file_of_every_state_folder_and_nothing_else(tmp_path) -> None:
    _state(tmp_path / "tiny-000002-state", 2, 6, payload=1000)
    _state(tmp_path / "tiny-state", 4, 6, payload=500)
    (tmp_path / "tiny-000002.safetensors").write_bytes(b"c" * 4000)  # a checkpoint is not state
    _state(tmp_path / "other-000002-state", 2, 6, payload=7000)  # another run's
    state_file = len(json.dumps({"current_epoch": 2, "current_step": 6}))
    assert run_state_bytes(tmp_path, "tiny") == 1500 + 2 * state_file
    RunRecord(output_name="tiny", run_dir=str(tmp_path)).save()
    assert run_state_bytes(tmp_path) == 1500 + 2 * state_file, "the output name comes from run.json"
    assert run_state_bytes(tmp_path / "nowhere") == 0
    assert [p.name for p in remove_states(tmp_path, "tiny")] == ["tiny-000002-state", "tiny-state"]
    assert run_state_bytes(tmp_path, "tiny") == 0 and (tmp_path / "tiny-000002.safetensors").is_file()
    assert (tmp_path / "other-000002-state").is_dir()


def test_over_budget_the_least_promising_states_go_first_until_the_rest_fit() -> None:
    paused = [("worst", 300), ("middling", 200), ("best", 100)]
    assert states_to_discard(paused, budget=600) == []
    assert states_to_discard(paused, budget=600, incoming=100) == ["worst"]
    assert states_to_discard(paused, budget=250, incoming=50) == ["worst", "middling"]
    assert states_to_discard(paused, budget=0) == ["worst", "middling", "best"]
    assert states_to_discard(paused, budget=50, incoming=100) == ["worst", "middling", "best"]
    assert reserve_bytes(1000, [300, 200]) == 500 and reserve_bytes(100, [300]) == 0


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), "20"])
def test_a_budget_that_is_no_size_is_refused_by_name(value) -> None:
    with pytest.raises(UserInputError, match="state-budget"):
        budget_bytes(value)


def test_a_budget_in_gigabytes() -> None:
    assert budget_bytes(1.5) == int(1.5 * 2**30) and budget_bytes(0) == 0


def test_the_disk_check_keeps_the_unused_state_budget_free(tmp_path) -> None:
    import shutil

    free = shutil.disk_usage(tmp_path).free
    assert check_disk(tmp_path, 0).ok
    report = check_disk(tmp_path, 0, reserved_bytes=free)
    assert not report.ok and "kept for paused runs' states" in report.problems[0]


def test_a_run_that_keeps_only_its_newest_state_is_estimated_with_two_on_disk() -> None:
    every_epoch = {"max_train_epochs": 10, "save_every_n_epochs": 1, "network_dim": 32, "save_state": True}
    assert save_plan(every_epoch).states_on_disk == 10
    newest = {**every_epoch, "save_last_n_epochs_state": 1}
    assert save_plan(newest).states_on_disk == 2  # the newest is written before the older one is removed
    assert save_plan({**newest, "save_state": False}).states_on_disk == 0
    assert (estimate_checkpoint_bytes(every_epoch, "sd15") - estimate_checkpoint_bytes(newest, "sd15")
            == 8 * estimate_state_bytes(every_epoch, "sd15"))


def test_pausable_runs_save_a_state_at_every_sample_epoch_and_keep_the_newest() -> None:
    assert pausable_arguments({"sample_every_n_epochs": 2}) == {
        "save_state": True, "save_every_n_epochs": 2, "save_last_n_epochs_state": 1,
        "max_data_loader_n_workers": 1, "persistent_data_loader_workers": False}
    # A checkpoint cadence that divides the sample cadence saves a state at every sample epoch already.
    assert pausable_arguments({"sample_every_n_epochs": 4, "save_every_n_epochs": 2})["save_every_n_epochs"] == 2
    assert pausable_arguments({"sample_every_n_epochs": 2, "save_every_n_epochs": 3})["save_every_n_epochs"] == 2
    assert pausable_arguments({"sample_every_n_steps": 50}) == {}


def test_pausable_runs_load_data_in_workers_started_afresh_each_epoch() -> None:
    """With no worker (or persistent ones) sd-scripts' dataset keeps its bucket order from epoch to epoch,
    and a resumed process restarts it from epoch 0: measured, a resumed LoRA 0.19 of a norm off a straight
    run's; with one worker per epoch, bit-identical (tests/runner/test_real_pause_resume.py)."""
    for training in ({"sample_every_n_epochs": 2, "max_data_loader_n_workers": 0},
                     {"sample_every_n_epochs": 2, "persistent_data_loader_workers": True},
                     {"sample_every_n_epochs": 2, "max_data_loader_n_workers": True}):
        rendered = pausable_arguments(training)
        assert rendered["max_data_loader_n_workers"] == 1, training
        assert rendered["persistent_data_loader_workers"] is False, training
    assert pausable_arguments({"sample_every_n_epochs": 2, "max_data_loader_n_workers": 4,
                               "persistent_data_loader_workers": True})["max_data_loader_n_workers"] == 4
    assert pausable_arguments({"sample_every_n_epochs": 2, "max_data_loader_n_workers": 4,
                               "persistent_data_loader_workers": True})["persistent_data_loader_workers"] is False
    # Not pausable, not touched: the run's own loader settings stay.
    assert pausable_arguments({"sample_every_n_steps": 50, "max_data_loader_n_workers": 0}) == {}


def test_the_newest_state_is_decided_by_epoch_before_the_step_a_resumed_segment_miscounts(tmp_path) -> None:
    _state(tmp_path / "tiny-000002-state", 2, 6)
    resumed_last = _state(tmp_path / "tiny-state", 4, 6)  # sd-scripts #2171: the segment's own 6 steps
    _state(tmp_path / "tiny-000001-state", 1, 3)
    (tmp_path / "tiny-000003-state").mkdir()  # half-written: no train_state.json
    assert newest_state(tmp_path, "tiny").path == resumed_last
    record_true_step(resumed_last, 12)
    record_true_step(resumed_last, 12)
    data = json.loads((resumed_last / "train_state.json").read_text())
    assert data == {"current_epoch": 4, "current_step": 12, "lora_pipeline_segment_step": 6}
    assert read_train_state(resumed_last).step == 12 and read_train_state(tmp_path / "tiny-000003-state") is None
