"""`lora-pipeline train | monitor | stop | watch` on a tiny project (preset + kohya folders) and the fake."""

from __future__ import annotations

import json
import time

import pytest

from orchestrator.cli import main
from orchestrator.runner.record import load_run_record
from tests.runner.conftest import FAKE_SD_SCRIPTS

pytestmark = pytest.mark.timeout(90)

def test_dry_run_prints_files_and_argv_and_starts_nothing(project, capsys):
    assert main(["train", "tiny_cli", "--dry-run", "--set", "network_dim=8"]) == 0
    printed = capsys.readouterr().out
    assert "network_dim = 8" in printed and "--console_log_simple" in printed
    assert str(FAKE_SD_SCRIPTS / "train_network.py") in printed
    assert not (project / "outputs").exists()


def test_train_wait_succeeds_and_monitor_once_shows_the_run(project, capsys):
    assert main(["train", "tiny_cli", "--wait"]) == 0
    run_dir = project / "outputs" / "tiny_cli"
    record = load_run_record(run_dir)
    assert record.status == "succeeded"
    assert "succeeded:" in capsys.readouterr().out
    assert main(["monitor", str(run_dir), "--once"]) == 0
    screen = capsys.readouterr().out
    assert "[succeeded]" in screen and "8/8" in screen and "epoch 2/2" in screen
    assert "ckpt     epoch 2" in screen and "cpu" in screen
    assert main(["monitor", "--session", record.tmux_session, "--once"]) == 0
    assert "[succeeded]" in capsys.readouterr().out


def test_preflight_failure_prints_one_line_per_problem_and_exits_non_zero(project, capsys):
    (project / "data" / "kohya" / "1_luca" / "frame_000.txt").unlink()
    assert main(["train", "tiny_big"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("pre-flight: ")]
    assert any("VRAM" in line for line in errors)
    assert any("caption" in line for line in errors)
    assert not (project / "outputs" / "tiny_big" / "run.json").exists()


def test_detached_train_is_completed_by_its_background_watcher(project, capsys, fake_env):
    fake_env(step_seconds=0.1)
    assert main(["train", "tiny_cli"]) == 0
    out = capsys.readouterr().out
    assert "tmux -L" in out and "attach -t tiny_cli" in out
    run_dir = project / "outputs" / "tiny_cli"
    deadline = time.monotonic() + 60
    while load_run_record(run_dir).is_active and time.monotonic() < deadline:
        time.sleep(0.2)
    assert load_run_record(run_dir).status == "succeeded"
    assert main(["watch", str(run_dir)]) == 0  # already complete: reports it


def test_stop_command_stops_a_running_run(project, capsys, fake_env):
    fake_env(step_seconds=0.5)
    assert main(["train", "tiny_cli", "--set", "max_train_epochs=20"]) == 0
    run_dir = project / "outputs" / "tiny_cli"
    trainer_file = run_dir / ".runner" / "trainer.json"
    deadline = time.monotonic() + 20
    while not trainer_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert main(["stop", str(run_dir), "--timeout", "5"]) == 0
    assert "stopped" in capsys.readouterr().out
    assert json.loads((run_dir / "run.json").read_text())["status"] == "stopped"
