"""The two shell scripts: start the search in tmux (a private tmux server), then monitor it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "scripts" / "training" / "run_hyperparameter_search_optuna.sh"
MONITOR = ROOT / "scripts" / "training" / "monitor_hyperparam_optuna.sh"


@pytest.fixture
def private_tmux(tmp_path: Path) -> dict[str, str]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    folder = tmp_path / "tmux"
    folder.mkdir()
    env = {**os.environ, "TMUX_TMPDIR": str(folder)}  # a server of our own, never the user's sessions
    env.pop("TMUX", None)
    yield env
    subprocess.run(["tmux", "kill-server"], env=env, capture_output=True)


def test_the_search_runs_in_its_tmux_session_and_the_monitor_reports_it(private_tmux, tmp_path) -> None:
    output = tmp_path / "search out"
    started = subprocess.run(
        [str(RUN), "--output", str(output), "--trials", "3", "--", "--executor", "simulated", "--seed", "2",
         "--pruner", "none"], env=private_tmux, capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    assert "tmux attach -t luca_hyperparam_search" in started.stdout
    deadline = time.monotonic() + 90
    results = output / "trial_results.json"
    while time.monotonic() < deadline:
        if results.is_file() and json.loads(results.read_text())["counted_trials"] == 3 \
                and not json.loads(results.read_text())["counts"].get("running"):
            break
        time.sleep(0.5)
    else:
        raise AssertionError((output / "search.log").read_text() if (output / "search.log").exists() else "no log")
    status = subprocess.run([str(MONITOR), "--output", str(output), "--once"], env=private_tmux,
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    assert "3/3 trials" in status.stdout and "best so far: trial" in status.stdout


def test_a_second_start_refuses_while_the_session_exists(private_tmux, tmp_path) -> None:
    subprocess.run(["tmux", "new-session", "-d", "-s", "luca_hyperparam_search", "sleep 30"], env=private_tmux,
                   check=True)
    again = subprocess.run([str(RUN), "--output", str(tmp_path)], env=private_tmux, capture_output=True, text=True)
    assert again.returncode == 1 and "already running" in again.stderr


def test_status_shows_a_running_trials_epoch_and_loss(tmp_path) -> None:
    from orchestrator.common.atomic import atomic_write_json
    from orchestrator.runner.record import RunRecord
    from orchestrator.search.monitor import status_lines

    trial_dir = tmp_path / "trials" / "trial_0003"
    record = RunRecord(output_name="trial_0003", run_dir=str(trial_dir / "run"), status="running",
                       tmux_session="lora_hyperparameter_search_trial_0003",
                       summary={"epochs": 16}, epochs=[{"epoch": 7}], losses=[{"step": 90, "avr_loss": 0.0831}])
    (trial_dir / "run").mkdir(parents=True)
    record.save()
    atomic_write_json(tmp_path / "trial_results.json", {
        "study_name": "s", "counted_trials": 4, "target_trials": 20, "counts": {"complete": 3, "running": 1},
        "gpu_hours": 12.5, "updated_at": "now",
        "best": {"number": 1, "value": 0.79, "best_epoch": 14},
        "trials": [{"number": 3, "outcome": "running", "directory": str(trial_dir), "epoch_scores": {"6": 0.7}}],
    })
    lines = status_lines(tmp_path)
    assert lines[0].startswith("study s: 4/20 trials (complete 3, running 1); GPU time 12.5 h")
    assert lines[1] == "best so far: trial 1 score 0.7900 at epoch 14"
    assert lines[2] == ("running: trial 3 epoch 7/16, loss 0.0831 (running, tmux "
                        "lora_hyperparameter_search_trial_0003), last score 0.7000 at epoch 6")


def test_a_storage_password_reaches_no_command_line_and_lands_in_a_private_pgpass(private_tmux, tmp_path) -> None:
    output = tmp_path / "out"
    started = subprocess.run(
        [str(RUN), "--output", str(output), "--trials", "1", "--", "--executor", "simulated",
         "--storage", "postgresql://luca:s3cr%3At@127.0.0.1:1/optuna"],
        env=private_tmux, capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    panes = subprocess.run(["tmux", "list-panes", "-a", "-F", "#{pane_start_command}"], env=private_tmux,
                           capture_output=True, text=True, check=True).stdout
    assert "luca@127.0.0.1:1/optuna" in panes and "s3cr" not in panes
    pgpass = output / ".pgpass"
    assert pgpass.read_text() == "127.0.0.1:1:optuna:luca:s3cr\\:t\n"  # decoded, then pgpass-escaped
    assert pgpass.stat().st_mode & 0o077 == 0
    assert f"PGPASSFILE={pgpass}" in panes.replace("\\", "")
