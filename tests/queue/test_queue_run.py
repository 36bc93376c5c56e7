"""`queue add | run | cancel | list` with real `lora-pipeline train` jobs on the sd-scripts test double."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.queue import QueueStore
from orchestrator.runner.files import RunFiles, pid_alive
from orchestrator.runner.record import load_run_record

PROJECT = Path(__file__).resolve().parents[2]
SPACE = PROJECT / "configs" / "search" / "luca_tpe_v2_1.toml"


def _queue(project: Path) -> QueueStore:
    return QueueStore(project / "outputs" / "queue" / "queue.json")


def _runner(project: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "orchestrator", "queue", "run", "--gpus", "0", "--poll", "0.2"],
                            cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.timeout(240)
def test_a_search_and_two_trainings_share_two_gpus_and_each_training_is_pinned(project, capsys) -> None:
    assert main(["queue", "add", "tiny_cli"]) == 0
    assert main(["queue", "add", "tiny_cli", "--set", "max_train_epochs=3"]) == 0
    assert main(["queue", "add", "tiny_cli", "--search", "--args",
                 f"--executor simulated --trials 3 --seed 1 --space {SPACE}"]) == 0
    assert main(["queue", "run", "--gpus", "0,1", "--poll", "0.2"]) == 0
    state = _queue(project).read()
    assert [job.state for job in state.jobs] == ["succeeded"] * 3, [job.reason for job in state.jobs]
    pinned = []
    for job in state.jobs[:2]:
        record = load_run_record(Path(job.folder))
        assert record.status == "succeeded"
        pinned.append(record.environment_set["CUDA_VISIBLE_DEVICES"])
        assert pinned[-1] == ",".join(map(str, job.gpus))
    assert set(pinned) <= {"0", "1"}
    assert "3" in load_run_record(Path(state.jobs[1].folder)).checkpoints, "the job's --set reached the trainer"
    search = json.loads((Path(state.jobs[2].folder) / "trial_results.json").read_text())
    assert search["counted_trials"] == 3
    capsys.readouterr()
    assert main(["monitor", state.jobs[0].folder, "--once"]) == 0, "a job's run folder is a train run folder"
    assert "[succeeded]" in capsys.readouterr().out
    assert main(["queue", "list"]) == 0
    listing = capsys.readouterr().out
    assert listing.count("succeeded") == 3 and "search" in listing


@pytest.mark.timeout(180)
def test_a_failing_job_does_not_stop_the_queue(project, capsys) -> None:
    assert main(["queue", "add", "tiny_big"]) == 0  # needs 100000 GiB of VRAM: its pre-flight refuses it
    assert main(["queue", "add", "tiny_cli"]) == 0
    assert main(["queue", "run", "--gpus", "0", "--poll", "0.2"]) == 1
    first, second = _queue(project).read().jobs
    assert first.state == "failed" and first.exit_code == 1 and "VRAM" in (first.reason or "")
    assert second.state == "succeeded"


def test_options_the_command_would_refuse_are_refused_when_added(project, capsys) -> None:
    assert main(["queue", "add", "tiny_cli", "--args=--no-such-option"]) == 2
    assert main(["queue", "add", "tiny_cli", "--args=--gpus 3"]) == 2
    with pytest.raises(SystemExit) as refused:  # argparse's group: --set and --search exclude each other
        main(["queue", "add", "tiny_cli", "--search", "--set", "network_dim=8"])
    assert refused.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    assert not _queue(project).read().jobs


@pytest.mark.timeout(240)
def test_jobs_survive_a_killed_runner_and_a_running_job_can_be_cancelled(project, fake_env) -> None:
    fake_env(step_seconds=0.3)
    assert main(["queue", "add", "tiny_cli", "--set", "max_train_epochs=20"]) == 0
    assert main(["queue", "add", "tiny_cli"]) == 0
    store = _queue(project)
    runner = _runner(project)
    run_dir = Path(store.read().job(1).folder)

    def trainer_pid() -> int | None:
        pid = (RunFiles(run_dir).read(RunFiles(run_dir).trainer) or {}).get("pid")
        return pid if pid_alive(pid) else None

    _wait_for(lambda: trainer_pid() is not None)
    os.kill(runner.pid, signal.SIGKILL)  # a crash of the runner (a reboot kills the trainer too)
    runner.wait(timeout=30)
    trainer = trainer_pid()
    assert trainer is not None, "the trainer lives on in tmux"
    assert store.read().job(1).state == "running", "the file still says what was running"

    again = _runner(project)  # the restart: job 1 is queued again and its trainer re-attached
    _wait_for(lambda: store.read().job(1).attempts == 2 and store.read().job(1).state == "running")
    assert main(["queue", "cancel", "1"]) == 0
    out, _ = again.communicate(timeout=180)
    assert again.returncode == 0, out
    first, second = store.read().jobs
    assert first.state == "cancelled" and first.attempts == 2
    assert "watch" in Path(first.log).read_text(), "the second attempt followed the surviving trainer"
    assert not pid_alive(trainer) and load_run_record(run_dir).status == "stopped"
    logs = list((project / "logs" / "training").glob("tiny_cli_*.log"))
    assert len(logs) == 2, "job 1 was trained once (then stopped), job 2 once"
    assert second.state == "succeeded"
    assert main(["queue", "cancel", "2"]) == 2  # already ended
