"""kill -9 of the orchestrator between and during trials, then resume: no trial lost, none doubled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.search.results import RESULTS_FILE
from orchestrator.search.simulator import PROGRESS_FILE

CHILD = Path(__file__).with_name("search_child.py")


def start_child(tmp_path: Path, **options) -> subprocess.Popen:
    options = {"output": str(tmp_path / "out"), "trials": 4, "seed": 2, **options}
    settings = tmp_path / f"settings_{time.monotonic_ns()}.json"
    settings.write_text(json.dumps(options))
    return subprocess.Popen([sys.executable, str(CHILD), str(settings)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


def wait_for_running_trial(output: Path, *, min_epochs: int, timeout: float = 60.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for progress in output.glob(f"trials/*/{PROGRESS_FILE}"):
            try:
                state = json.loads(progress.read_text())
            except (OSError, ValueError):
                continue
            if state["epochs_done"] >= min_epochs and not state["finished"]:
                return progress.parent
        time.sleep(0.05)
    raise AssertionError("no trial reached the wanted epoch in time")


def assert_exact_study(output: Path, trials: int) -> list[dict]:
    data = json.loads((output / RESULTS_FILE).read_text())
    counted = [t for t in data["trials"]
               if t["outcome"] in ("complete", "pruned", "failed") and not t["retried_as_new_trial"]]
    assert data["counted_trials"] == len(counted) == trials
    assert not [t for t in data["trials"] if t["state"] in ("running", "waiting")]
    directories = [t["directory"] for t in data["trials"] if t["directory"]]
    assert len(directories) == len(set(directories)), "a trial folder was reused"
    for entry in counted:
        assert entry["outcome"] == "complete" and entry["value"] is not None
    return data["trials"]


def test_kill_between_trials_then_resume_counts_exactly(tmp_path) -> None:
    killed = start_child(tmp_path, kill_self_after=2)
    killed.wait(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    finished_before = json.loads((tmp_path / "out" / RESULTS_FILE).read_text())["trials"]
    summary = finish(start_child(tmp_path))
    assert summary["counted"] == 4 and summary["adopted"] == []
    entries = assert_exact_study(tmp_path / "out", 4)
    by_number = {t["number"]: t for t in entries}
    for entry in finished_before:
        if entry["outcome"] == "complete":
            assert by_number[entry["number"]]["finished_at"] == entry["finished_at"]
    assert not [t for t in entries if t["retried_as_new_trial"]], "nothing was running at the kill"


def test_kill_during_a_trial_whose_trainer_died_too_retries_it_once(tmp_path) -> None:
    child = start_child(tmp_path, wall_seconds_per_epoch=0.15)
    interrupted = wait_for_running_trial(tmp_path / "out", min_epochs=2)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    summary = finish(start_child(tmp_path))
    assert summary["counted"] == 4 and summary["adopted"] == []
    entries = assert_exact_study(tmp_path / "out", 4)
    number = int(interrupted.name.removeprefix("trial_"))
    lost = next(t for t in entries if t["number"] == number)
    assert lost["state"] == "fail" and lost["retried_as_new_trial"] and "died" in lost["reason"]
    retries = [t for t in entries if t["retry_of"] == number]
    assert len(retries) == 1 and retries[0]["params"] == lost["params"]
    assert retries[0]["number"] > number and retries[0]["outcome"] == "complete"


def test_kill_during_a_trial_whose_trainer_lives_on_readopts_it(tmp_path) -> None:
    child = start_child(tmp_path, wall_seconds_per_epoch=0.15, trainer_survives=True)
    interrupted = wait_for_running_trial(tmp_path / "out", min_epochs=2)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    number = int(interrupted.name.removeprefix("trial_"))
    summary = finish(start_child(tmp_path, trainer_survives=True))
    assert summary["counted"] == 4 and summary["adopted"] == [number]
    entries = assert_exact_study(tmp_path / "out", 4)
    adopted = next(t for t in entries if t["number"] == number)
    assert adopted["adopted"] and adopted["outcome"] == "complete"
    assert not [t for t in entries if t["retry_of"] is not None], "an adopted trial must not be retrained"
    epochs = [int(e) for e in adopted["epoch_scores"]]
    assert epochs == sorted(set(epochs)) and epochs[-1] == adopted["params"]["max_train_epochs"]
