"""Real tmux sessions (a private server per test) running the fake sd-scripts through the supervisor."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import toml

from orchestrator.common.errors import UserInputError
from orchestrator.common.tomlfile import dumps_toml, parse_toml
from orchestrator.runner import tmux
from orchestrator.runner.files import RunFiles
from orchestrator.runner.handle import adopt_run, stop_run
from orchestrator.runner.launch import PreflightFailed, follow_with_retry, start_training
from orchestrator.runner.record import load_run_record
from tests.runner.conftest import make_dataset, make_rendered

pytestmark = pytest.mark.timeout(60)


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def trainer_pid(run_dir: Path) -> int:
    files = RunFiles(run_dir)
    wait_for(lambda: files.read(files.trainer) is not None)
    return files.read(files.trainer)["pid"]


def test_a_run_succeeds_with_record_checkpoints_samples_and_log(tmp_path, tmux_socket, project_paths):
    rendered = make_rendered(tmp_path)
    handle = start_training(rendered, paths=project_paths)
    seen = []
    record = handle.follow(on_event=lambda event, rec: seen.append(type(event).__name__), poll_seconds=0.1)
    assert record.status == "succeeded", record.failure
    assert record.exit_code == 0 and record.finished_logged
    assert set(record.checkpoints) == {"1", "2"}
    assert Path(record.checkpoints["2"]).name == "tiny.safetensors"
    assert [Path(p).name.startswith("tiny_e000002_00_") for p in record.samples["2"]] == [True]
    assert [loss["step"] for loss in record.losses] == list(range(1, 9))
    log_path = Path(record.log_path)
    assert log_path.parent == project_paths.logs_dir.resolve()
    assert log_path.name.startswith("tiny_") and len(log_path.stem) == len("tiny_20261124_123456")
    assert "model saved." in log_path.read_text(encoding="utf-8")
    assert load_run_record(rendered.run_dir).status == "succeeded"  # written to disk, not only returned
    assert "Finished" in seen and "CheckpointSaved" in seen
    # A concluded run closes its session (issue 13: idle sessions piled up); the log holds the output.
    assert record.tmux_session == "tiny" and not tmux.session_exists("tiny", tmux_socket)


def test_hostile_paths_reach_the_trainer_verbatim_and_nothing_is_executed(tmp_path, tmux_socket, project_paths):
    hostile = "we ird 'q\" $(touch pwned) ;`touch pwned2`"
    image_dir = make_dataset(tmp_path / f"data {hostile}" / "10_luca")
    rendered = make_rendered(tmp_path, run_dir=tmp_path / f"out {hostile}", image_dir=image_dir)
    record = start_training(rendered, paths=project_paths).follow(poll_seconds=0.1)
    assert record.status == "succeeded", record.failure
    assert Path(record.checkpoints["2"]).parent == rendered.run_dir
    suspects = [p for p in (tmp_path, project_paths.sd_scripts, Path.cwd(), Path.home())
                for p in (p / "pwned", p / "pwned2") if p.exists()]
    assert suspects == []


def test_no_data_exits_zero_but_is_a_failed_run(tmp_path, tmux_socket, project_paths, fake_env):
    fake_env("no_data")
    record = start_training(make_rendered(tmp_path), paths=project_paths).follow(poll_seconds=0.1)
    assert (record.status, record.exit_code, record.failure["cause"]) == ("failed", 0, "no_data")


def test_cuda_oom_is_failed_with_its_cause(tmp_path, tmux_socket, project_paths, fake_env):
    fake_env("oom")
    record = start_training(make_rendered(tmp_path), paths=project_paths).follow(poll_seconds=0.1)
    assert (record.status, record.failure["cause"]) == ("failed", "cuda_oom")
    assert "CUDA out of memory" in record.failure["message"]


def test_nan_loss_stops_the_run_at_once(tmp_path, tmux_socket, project_paths, fake_env):
    fake_env("nan", step_seconds=0.3, fail_at=2)
    rendered = make_rendered(tmp_path, epochs=5)
    record = start_training(rendered, paths=project_paths).follow(poll_seconds=0.1)
    assert (record.status, record.failure["cause"]) == ("failed", "nan_loss")
    assert record.losses[-1]["step"] < 20  # interrupted long before the 20 steps of 5 epochs
    assert not (rendered.run_dir / "tiny.safetensors").exists()


def test_a_trainer_that_dies_at_once_is_failed_with_its_exit_code(tmp_path, tmux_socket, project_paths, fake_env):
    fake_env("die")
    record = start_training(make_rendered(tmp_path), paths=project_paths).follow(poll_seconds=0.1)
    assert (record.status, record.exit_code, record.failure["cause"]) == ("failed", 1, "unknown")
    assert "code 1" in record.failure["message"]


@pytest.mark.parametrize("mode", ["silent", "hang"])
def test_a_trainer_that_stops_printing_is_stopped_as_stalled(tmp_path, tmux_socket, project_paths, fake_env, mode):
    fake_env(mode)
    handle = start_training(make_rendered(tmp_path), paths=project_paths)
    handle.stall_seconds, handle.stop_timeout = 1.5, 2.0
    record = handle.follow(poll_seconds=0.1)
    assert record.status == "failed"
    assert record.failure["message"].startswith("stalled: no output for 1.5 s")


def test_a_trainer_killed_from_outside_is_failed_with_the_signal(tmp_path, tmux_socket, project_paths, fake_env):
    fake_env(step_seconds=0.5)
    rendered = make_rendered(tmp_path, epochs=10)
    handle = start_training(rendered, paths=project_paths)
    os.kill(trainer_pid(rendered.run_dir), signal.SIGKILL)
    record = handle.follow(poll_seconds=0.1)
    assert (record.status, record.signal, record.failure["cause"]) == ("failed", 9, "killed_by_signal")


def test_stop_interrupts_gracefully_and_marks_the_run_stopped(tmp_path, tmux_socket, project_paths, fake_env):
    fake_env(step_seconds=0.5)
    rendered = make_rendered(tmp_path, epochs=10)
    start_training(rendered, paths=project_paths)
    trainer_pid(rendered.run_dir)
    record = stop_run(rendered.run_dir, timeout=5, reason="pruned")
    assert (record.status, record.stop_reason, record.failure) == ("stopped", "pruned", None)
    # Interrupted gracefully (KeyboardInterrupt: exit 1, or SIGINT re-raised by Python), never killed.
    assert record.signal in (None, signal.SIGINT) and record.exit_code in (None, 1)


def test_a_second_run_on_the_same_folder_is_refused(tmp_path, tmux_socket, project_paths, fake_env):
    fake_env(step_seconds=0.5)
    rendered = make_rendered(tmp_path, epochs=10)
    start_training(rendered, paths=project_paths)
    trainer_pid(rendered.run_dir)
    with pytest.raises(PreflightFailed, match="has a live run"):
        start_training(rendered, paths=project_paths)
    with pytest.raises(UserInputError, match="another run is using this folder|still running"):
        start_training(rendered, paths=project_paths, run_checks=False)
    stop_run(rendered.run_dir, timeout=5)


def test_an_existing_session_name_is_refused_and_a_default_name_is_made_unique(tmp_path, tmux_socket,
                                                                               project_paths):
    tmux.start_session("taken", ["true"], cwd=tmp_path, socket_name=tmux_socket)
    with pytest.raises(UserInputError, match="already exists"):
        start_training(make_rendered(tmp_path), paths=project_paths, session_name="taken")
    tmux.start_session("tiny", ["true"], cwd=tmp_path, socket_name=tmux_socket)
    handle = start_training(make_rendered(tmp_path), paths=project_paths)
    assert handle.record.tmux_session == "tiny-2"
    assert handle.follow(poll_seconds=0.1).status == "succeeded"


def test_watch_re_adopts_a_run_whose_orchestrator_died(tmp_path, tmux_socket, project_paths, fake_env):
    fake_env(step_seconds=0.2)
    rendered = make_rendered(tmp_path, epochs=2)
    start_training(rendered, paths=project_paths)  # no follow: the orchestrator "died" here
    trainer_pid(rendered.run_dir)
    handle = adopt_run(rendered.run_dir)
    assert handle is not None
    record = handle.follow(poll_seconds=0.1)
    assert record.status == "succeeded", record.failure
    assert Path(record.log_path).read_text(encoding="utf-8").count("running training") == 1  # trained once
    assert adopt_run(rendered.run_dir) is None  # complete: nothing left to adopt


def test_resume_continues_from_the_newest_state_with_global_steps(tmp_path, tmux_socket, project_paths):
    first = start_training(make_rendered(tmp_path, epochs=2), paths=project_paths).follow(poll_seconds=0.1)
    assert first.status == "succeeded"
    longer = make_rendered(tmp_path, epochs=3)
    handle = start_training(longer, paths=project_paths, resume=True)
    assert handle.record.argv[-2:] == ["--resume", str(longer.run_dir / "tiny-state")]
    record = handle.follow(poll_seconds=0.1)
    assert record.status == "succeeded", record.failure
    assert record.step_offset == 8
    assert [loss["step"] for loss in record.losses] == list(range(1, 13))
    assert [entry["reason"] for entry in record.relaunches] == ["resume"]
    assert record.relaunches[0]["previous_log"] == first.log_path
    assert json.loads((longer.run_dir / "tiny-state" / "train_state.json").read_text())["current_epoch"] == 3


def test_preflight_reports_every_problem_on_its_own_line(tmp_path, tmux_socket, project_paths):
    image_dir = tmp_path / "data" / "10_luca"
    make_dataset(image_dir)
    (image_dir / "frame_000.txt").unlink()
    (image_dir / "frame_001.png").write_bytes(b"not a png")
    rendered = make_rendered(tmp_path, image_dir=image_dir)
    rendered.training["pretrained_model_name_or_path"] = str(tmp_path / "no-model")
    with pytest.raises(PreflightFailed) as caught:
        start_training(rendered, paths=project_paths.with_overrides(trainer_python=str(tmp_path / "nopython")))
    problems = caught.value.report.problems
    assert any(p.startswith("dataset: missing caption:") and "frame_000" in p for p in problems)
    assert any(p.startswith("dataset: unreadable image:") and "frame_001.png" in p for p in problems)
    assert any("no-model does not exist" in p for p in problems)
    assert any("trainer Python" in p for p in problems)
    assert not (rendered.run_dir / "run.json").exists()  # nothing started


def test_oom_retry_relaunches_once_with_half_the_batch_and_double_accumulation(tmp_path, tmux_socket,
                                                                               project_paths, fake_env):
    fake_env("oom", fail_at=2)
    rendered = make_rendered(tmp_path)
    dataset = parse_toml(rendered.dataset_config_file.read_text())
    dataset["datasets"][0]["batch_size"] = 4
    rendered.dataset_config_file.write_text(dumps_toml(dataset))
    handle = start_training(rendered, paths=project_paths)
    record = follow_with_retry(handle, retry_oom=True, poll_seconds=0.1)
    # The fake runs out of memory again at step 2, so the retry fails too and is not retried twice.
    assert (record.status, record.failure["cause"]) == ("failed", "cuda_oom")
    assert [r["reason"] for r in record.relaunches] == ["cuda_oom: batch 4→2, gradient accumulation 1→2"]
    assert record.relaunches[0]["previous_failure"]["cause"] == "cuda_oom"
    assert record.log_path != record.relaunches[0]["previous_log"]
    assert toml.loads(rendered.dataset_config_file.read_text())["datasets"][0]["batch_size"] == 2
    training = parse_toml(rendered.config_file.read_text())
    assert any(t.get("gradient_accumulation_steps") == 2 for t in training.values() if isinstance(t, dict))
    assert record.summary["batches_per_epoch"] == 2 and record.summary["grad_accum"] == 2


def test_a_stop_reaches_every_process_of_the_trainers_group(tmp_path, tmux_socket, project_paths, fake_env,
                                                            monkeypatch):
    from orchestrator.runner.files import pid_alive

    fake_env(step_seconds=0.5)
    helper_file = tmp_path / "helper.pid"
    monkeypatch.setenv("FAKE_SD_SCRIPTS_HELPER_PID_FILE", str(helper_file))
    rendered = make_rendered(tmp_path, epochs=10)
    start_training(rendered, paths=project_paths)
    trainer_pid(rendered.run_dir)
    wait_for(helper_file.is_file)
    helper = int(helper_file.read_text())
    stop_run(rendered.run_dir, timeout=5)
    wait_for(lambda: not pid_alive(helper))  # an accelerate worker must not outlive the stop


def test_a_concluded_run_leaves_no_tmux_session(tmp_path, tmux_socket, project_paths, fake_env):
    fake_env("oom")
    record = start_training(make_rendered(tmp_path), paths=project_paths).follow(poll_seconds=0.1)
    assert record.status == "failed" and not tmux.session_exists(record.tmux_session, tmux_socket)


def test_two_runs_of_one_output_name_started_in_one_second_keep_their_own_logs(tmp_path, tmux_socket,
                                                                                project_paths, monkeypatch):
    # Two queue jobs of one preset on two GPUs start in the same second; the supervisor appends to its log,
    # so a shared log name made each monitor read the other's checkpoint lines.
    import orchestrator.runner.launch as launch

    frozen = launch.datetime(2026, 12, 3, 7, 0, 0)

    class FrozenClock(launch.datetime):
        @classmethod
        def now(cls, tz=None):
            return frozen

    monkeypatch.setattr(launch, "datetime", FrozenClock)
    short = start_training(make_rendered(tmp_path / "a", epochs=1), paths=project_paths)
    long = start_training(make_rendered(tmp_path / "b", epochs=3), paths=project_paths)
    assert short.record.log_path != long.record.log_path
    short_record, long_record = short.follow(poll_seconds=0.1), long.follow(poll_seconds=0.1)
    assert (short_record.status, long_record.status) == ("succeeded", "succeeded")
    assert set(short_record.checkpoints) == {"1"}
    assert set(long_record.checkpoints) == {"1", "2", "3"}
    assert Path(short_record.log_path).name == "tiny_20261203_070000.log"
    assert Path(long_record.log_path).name == "tiny_20261203_070000_2.log"


def test_a_log_name_is_claimed_once_even_when_the_first_names_are_taken(tmp_path):
    from orchestrator.runner.launch import claim_log_path

    claimed = [claim_log_path(tmp_path / "logs", "tiny") for _ in range(3)]
    assert len(set(claimed)) == 3 and all(path.is_file() and path.stat().st_size == 0 for path in claimed)


def test_stop_of_a_run_whose_trainer_is_already_gone_says_so_and_exits_1(tmp_path, tmux_socket, project_paths,
                                                                          fake_env, capsys):
    from orchestrator.cli import main

    fake_env(step_seconds=0.5)
    rendered = make_rendered(tmp_path, epochs=10)
    start_training(rendered, paths=project_paths)
    files = RunFiles(rendered.run_dir)
    wait_for(lambda: files.read(files.trainer) is not None)
    trainer = files.read(files.trainer)
    for pid in (trainer["supervisor_pid"], trainer["pid"]):  # a reboot, or kill -9 of both
        os.kill(pid, signal.SIGKILL)
    wait_for(files.trainer_gone)
    assert load_run_record(rendered.run_dir).is_active  # what the record still says
    assert main(["stop", str(rendered.run_dir)]) == 1
    assert "nothing to stop: its trainer had already exited" in capsys.readouterr().err
    record = load_run_record(rendered.run_dir)
    assert record.status == "failed" and record.stop_reason is None  # concluded as it ended, not "stopped"
