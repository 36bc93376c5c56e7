"""A kill -9 during training loses nothing: the next `run` re-adopts the trainer still running in tmux,
or, when the trainer died too, resumes it from its last saved state; either way every epoch is trained once.

The trainer is the sd-scripts test double (paced steps), launched through the real runner in tmux."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.project import init_project
from orchestrator.project.context import tmux_socket_for

ROOT = Path(__file__).resolve().parents[2]
FAKE_SD_SCRIPTS = ROOT / "tests" / "fakes" / "fake_sd_scripts"
EPOCHS = 3

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600),
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]


def _start(project: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FAKE_SD_SCRIPTS_STEP_SECONDS": "1.0"}
    return subprocess.Popen([sys.executable, "-m", "tests.project.kill_run", str(project), str(FAKE_SD_SCRIPTS)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(path: Path, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.2)


@pytest.fixture
def project(tmp_path: Path, inputs) -> Path:
    model = tmp_path / "model"
    model.mkdir()  # the double never loads it; the pre-flight wants it to exist
    init_project(tmp_path / "luca", films=[inputs["film"]], references=inputs["references"],
                 profile=inputs["profile"], settings={
                     "project": {"device": "cpu"},
                     "models": {"base_model": str(model), "clip_model": "tiny-clip", "clip_weights": "random",
                                "vlm_weights": "unused", "model_cache": str(tmp_path / "models")},
                     "train": {"preset": str(ROOT / "orchestrator" / "quickstart" / "preset.toml"),
                               "set": {"max_train_epochs": EPOCHS}}})
    yield tmp_path / "luca"
    subprocess.run(["tmux", "-L", tmux_socket_for(tmp_path / "luca"), "kill-server"], capture_output=True)


@pytest.mark.parametrize("trainer_dies_too", [False, True], ids=["run-killed", "run-and-trainer-killed"])
def test_a_kill_during_training_then_run_finishes_with_every_epoch_trained_once(project, trainer_dies_too) -> None:
    run_dir = project / "training" / "luca"
    first = _start(project)
    _wait_for(run_dir / "luca-000001-state" / "train_state.json")  # epoch 1 and its state are saved
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    if trainer_dies_too:
        trainer = json.loads((run_dir / ".runner" / "trainer.json").read_text())
        for pid in (trainer.get("pid"), trainer.get("supervisor_pid")):
            if pid:
                os.kill(pid, signal.SIGKILL)
        time.sleep(1)
    second = _start(project)
    output, _ = second.communicate(timeout=400)
    assert second.returncode == 0, output[-3000:]
    assert ("resuming" if trainer_dies_too else "re-adopting") in output
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "succeeded"
    logs = [p.read_text(errors="replace") for p in sorted((project / "training" / "logs").glob("*.log"))]
    saved = re.findall(r"^saving checkpoint: .*/(luca[-0-9]*)\.safetensors", "".join(logs), flags=re.M)
    # Every epoch trained to its end once: an epoch cut short by the kill has no checkpoint and is trained
    # again from the state saved after the one before it, never from the start.
    assert sorted(saved) == ["luca", "luca-000001", "luca-000002"], saved
    assert "epoch 1/" not in logs[-1] or len(logs) == 1
