"""bench/gpu_check.py: refuses to invent figures without a GPU; its worker runs sd-scripts' real denoisers.

The full-size figures need a GPU (none in CI). What CI can prove: without a GPU the bench says so and exits
2, and (on demand, LORA_PIPELINE_FLOW_CPU_TESTS=1, marker flow_families_cpu) the worker trains a LoRA on
sd-scripts' own FLUX.1 and SD3.5 classes cut to a block or two, on the CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytest_plugins = ["tests.sd_scripts_support"]


def test_without_a_gpu_the_bench_says_so_and_exits_2():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
    completed = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py")], capture_output=True,
                               text=True, env=env, timeout=300, check=False)
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert "no CUDA GPU here" in completed.stderr and "Nothing was measured" in completed.stderr
    assert completed.stdout == ""


@pytest.mark.sd_scripts
@pytest.mark.flow_families_cpu
@pytest.mark.skipif(os.environ.get("LORA_PIPELINE_FLOW_CPU_TESTS") != "1",
                    reason="on demand: LORA_PIPELINE_FLOW_CPU_TESTS=1 (minutes of CPU per family)")
@pytest.mark.parametrize("family", ["flux1", "sd35"])
def test_the_worker_trains_a_lora_on_sd_scripts_own_denoiser(family, sd_scripts_dir, trainer_python):
    completed = subprocess.run([trainer_python, str(ROOT / "bench" / "_gpu_family_worker.py"), family, "--device",
                                "cpu", "--tiny", "--steps", "1"], cwd=sd_scripts_dir, capture_output=True, text=True,
                               timeout=1200, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    row = json.loads(completed.stdout.strip().splitlines()[-1])
    assert row["family"] == family and row["lora_parameters"] > 0 and row["seconds_per_step"] > 0
