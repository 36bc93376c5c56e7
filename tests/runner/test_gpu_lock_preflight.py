"""`train --gpus N` refuses a GPU that a search or the queue holds (one trainer per GPU), but not the GPU its
own process, or the queue runner that launched it, took for this very run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.runner.gpu_lock import GPU_LOCK_DIR_ENV, GpuLock
from orchestrator.runner.launch import PreflightFailed, start_training
from tests.runner.conftest import make_rendered

pytestmark = pytest.mark.timeout(60)
PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def private_gpu_locks(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "gpu_locks"
    monkeypatch.setenv(GPU_LOCK_DIR_ENV, str(folder))
    return folder


def test_a_gpu_another_process_holds_is_refused_before_anything_starts(tmp_path, tmux_socket, project_paths):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, sys.argv[1]);"
        "from orchestrator.runner.gpu_lock import GpuLock;"
        "lock = GpuLock([3], purpose='search luca_tpe'); lock.__enter__(); print('held', flush=True);"
        "time.sleep(60)"), str(PROJECT)], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert holder.stdout.readline().strip() == "held"
        rendered = make_rendered(tmp_path)
        with pytest.raises(PreflightFailed, match=rf"GPU 3: in use by pid {holder.pid} \(search luca_tpe\)"):
            start_training(rendered, paths=project_paths, gpus="2,3")
        assert not (rendered.run_dir / "run.json").exists(), "a refused run writes no record"
    finally:
        holder.kill()
        holder.wait()


def test_the_process_that_holds_the_gpu_for_this_run_may_start_it(tmp_path, tmux_socket, project_paths):
    with GpuLock([3], purpose="search trial 0"):
        record = start_training(make_rendered(tmp_path), paths=project_paths, gpus="3").follow(poll_seconds=0.1)
    assert record.status == "succeeded", record.failure
