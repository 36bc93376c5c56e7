"""The shell wrappers in scripts/training/ (thin layers over the CLI) on a tiny project and the fake."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.runner.record import load_run_record

pytestmark = pytest.mark.timeout(120)
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "training"


def run_script(name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(["bash", str(SCRIPTS / name), *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def wait_until_done(run_dir: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while load_run_record(run_dir).is_active and time.monotonic() < deadline:
        time.sleep(0.2)


def test_auto_train_waits_for_captions_then_trains_in_the_named_session(project):
    dataset = project / "data" / "kohya"
    missing = dataset / "1_luca" / "frame_003.txt"
    missing.unlink()
    waiting = run_script("auto_train_luca.sh", "--preset", "tiny_cli", "--poll", "1", "--max-wait", "2")
    assert waiting.returncode == 1
    assert "captions 3/4" in waiting.stdout and "did not finish" in waiting.stderr
    missing.write_text("luca, a boy", encoding="utf-8")
    started = run_script("auto_train_luca.sh", "--preset", "tiny_cli", "--poll", "1")
    assert started.returncode == 0, started.stderr
    assert "captions 4/4" in started.stdout
    assert "tmux attach -t luca_lora_training" in started.stdout
    run_dir = project / "outputs" / "tiny_cli"
    wait_until_done(run_dir)
    record = load_run_record(run_dir)
    assert (record.status, record.tmux_session) == ("succeeded", "luca_lora_training")
    monitor = run_script("monitor_training.sh", str(run_dir), "--once")
    assert monitor.returncode == 0 and "[succeeded]" in monitor.stdout


def test_stop_script_needs_a_run_folder_and_stops_it(project, fake_env):
    assert run_script("stop_training.sh").returncode == 2
    fake_env(step_seconds=0.5)
    started = run_script("auto_train_luca.sh", "--preset", "tiny_cli", "--poll", "1", "--",
                         "--set", "max_train_epochs=20")
    assert started.returncode == 0, started.stderr
    run_dir = project / "outputs" / "tiny_cli"
    deadline = time.monotonic() + 20
    while not (run_dir / ".runner" / "trainer.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    stopped = run_script("stop_training.sh", str(run_dir), "--timeout", "5")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert load_run_record(run_dir).status == "stopped"


def test_sdxl_script_refuses_a_machine_without_16_gb_of_vram(project):
    result = run_script("start_sdxl_16gb_training.sh")
    gpus_present = "VRAM check:" in result.stdout
    if gpus_present:
        pytest.skip("this machine has an NVIDIA GPU; the refusal path needs one without")
    assert result.returncode != 0
    assert "VRAM check" in result.stderr and "16 GB" in result.stderr
    assert not (project / "outputs").exists()
