"""run.json folding and the outcome rules (pure: no processes)."""

from __future__ import annotations

import json

import pytest

from orchestrator.common.errors import UserInputError
from orchestrator.kohya.log_grammar import parse_text
from orchestrator.runner.outcome import decide_outcome
from orchestrator.runner.record import RunRecord, load_run_record
from tests.runner import transcripts


def record_from(text: str, **fields) -> RunRecord:
    record = RunRecord(output_name="tiny", run_dir="/nowhere", **fields)
    for event in parse_text(text):
        record.apply(event, seen_at="2026-11-24T12:00:00+00:00")
    return record


def test_record_of_a_real_run_holds_losses_validation_checkpoints_and_summary():
    record = record_from(transcripts.run_b_simple())
    assert record.summary == {"images_x_repeats": 3, "batches_per_epoch": 3, "epochs": 2, "grad_accum": 1,
                              "total_steps": 6}
    assert [(loss["step"], loss["avr_loss"]) for loss in record.losses] == [
        (1, 1.06), (2, 1.09), (3, 1.16), (4, 1.17), (5, 1.21), (6, 1.2)]
    assert record.validation_losses == [{"epoch": 1, "loss": 1.07}, {"epoch": 2, "loss": 1.06}]
    assert record.checkpoints == {"1": "/workspace/run2/out/tiny-000001.safetensors",
                                  "2": "/workspace/run2/out/tiny.safetensors"}
    assert record.finished_logged and record.failure is None
    assert [e["epoch"] for e in record.epochs] == [1, 2]


def test_the_monitor_shows_each_validated_epochs_loss_from_a_real_log():
    from orchestrator.runner.monitor import snapshot_text

    [line] = [line for line in snapshot_text(record_from(transcripts.run_a_rich())).splitlines()
              if line.startswith("val loss")]
    assert line == "val loss 1: 1.07  2: 1.06   (lowest at epoch 2)"


def test_replaying_the_same_log_changes_nothing():
    record = record_from(transcripts.run_b_simple())
    before = json.dumps(record.to_json(), sort_keys=True)
    for event in parse_text(transcripts.run_b_simple()):
        record.apply(event, seen_at="2026-11-24T13:00:00+00:00")  # later clock: live times must stay
    assert json.dumps(record.to_json(), sort_keys=True) == before


def test_resumed_steps_continue_the_global_count_and_replace_re_run_steps():
    record = record_from(transcripts.run_b_simple())
    record.step_offset = 3  # resumed from the epoch-1 state (current_step 3)
    for event in parse_text(transcripts.run_c_resume()):
        record.apply(event, seen_at="2026-11-24T12:00:00+00:00")
    assert [loss["step"] for loss in record.losses] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert record.losses[3]["avr_loss"] == 1.08  # step 4 is the resumed run's, not the first run's


def test_record_round_trips_through_run_json(tmp_path):
    record = record_from(transcripts.run_b_simple(), status="succeeded")
    record.run_dir = str(tmp_path)
    record.save()
    assert load_run_record(tmp_path) == record


def test_missing_or_broken_run_json_is_a_user_error(tmp_path):
    with pytest.raises(UserInputError, match="no run record"):
        load_run_record(tmp_path)
    (tmp_path / "run.json").write_text("{half", encoding="utf-8")
    with pytest.raises(UserInputError, match="unreadable"):
        load_run_record(tmp_path)


OUTCOME = dict(finished_logged=False, final_on_disk=False, log_failure=None, exit_code=0, signal_number=None,
               stop_reason=None, vanished=None)


def test_success_needs_model_saved_and_the_final_checkpoint():
    assert decide_outcome(**{**OUTCOME, "finished_logged": True, "final_on_disk": True}) == ("succeeded", None)
    status, failure = decide_outcome(**{**OUTCOME, "finished_logged": True})
    assert status == "failed" and "not on disk" in failure["message"]


def test_exit_code_zero_without_model_saved_is_a_failure():
    status, failure = decide_outcome(**OUTCOME)
    assert status == "failed" and failure["cause"] == "unknown" and "code 0" in failure["message"]


def test_no_data_with_exit_zero_is_failed_with_its_cause():
    no_data = {"cause": "no_data", "message": "No data found.", "lines": []}
    assert decide_outcome(**{**OUTCOME, "log_failure": no_data}) == ("failed", no_data)


def test_signal_from_outside_is_killed_by_signal_and_a_user_stop_is_stopped():
    status, failure = decide_outcome(**{**OUTCOME, "exit_code": None, "signal_number": 9})
    assert (status, failure["cause"]) == ("failed", "killed_by_signal") and "SIGKILL" in failure["message"]
    interrupted = {"cause": "traceback", "message": "KeyboardInterrupt", "lines": []}
    assert decide_outcome(**{**OUTCOME, "log_failure": interrupted, "stop_reason": "user"}) == ("stopped", None)


def test_a_stall_stop_is_a_failure_that_says_so():
    interrupted = {"cause": "traceback", "message": "KeyboardInterrupt", "lines": []}
    status, failure = decide_outcome(**{**OUTCOME, "log_failure": interrupted, "stop_reason": "stalled",
                                        "stall_seconds": 5.0})
    assert status == "failed" and failure["message"].startswith("stalled: no output for 5 s")


def test_a_second_lock_on_a_run_folder_names_the_pid_that_holds_it(tmp_path):
    import multiprocessing

    from orchestrator.runner.files import RunLock

    ready, done = multiprocessing.Event(), multiprocessing.Event()

    def hold() -> None:
        with RunLock(tmp_path):
            ready.set()
            done.wait(30)

    holder = multiprocessing.get_context("fork").Process(target=hold)
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(UserInputError, match=rf"lock held by pid {holder.pid}\b"):
            with RunLock(tmp_path):
                pass
    finally:
        done.set()
        holder.join(30)


def test_a_failure_during_a_stop_reads_as_a_failure():
    oom = {"cause": "cuda_oom", "message": "CUDA out of memory", "lines": []}
    assert decide_outcome(**{**OUTCOME, "log_failure": oom, "stop_reason": "pruned"}) == ("failed", oom)
    crash = {"cause": "traceback", "message": "RuntimeError: CUDA error: an illegal memory access", "lines": []}
    assert decide_outcome(**{**OUTCOME, "log_failure": crash, "stop_reason": "user"}) == ("failed", crash)
    cut_off = {"cause": "traceback", "message": '  File "train_network.py", line 9', "lines": []}
    assert decide_outcome(**{**OUTCOME, "log_failure": cut_off, "stop_reason": "pruned"}) == ("stopped", None)


def test_a_stall_is_recorded_with_its_own_cause():
    status, failure = decide_outcome(**{**OUTCOME, "stop_reason": "stalled", "stall_seconds": 60.0})
    assert (status, failure["cause"]) == ("failed", "stalled")
