"""The parallel bench's GPU-hour part: four search loops on a virtual clock, with the scheduler pausing and
resuming runs on whichever loop is free (bench/parallel_search.py)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "parallel_search.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("parallel_search_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(300)
@pytest.mark.parametrize("scheduler", ["none", "first-epoch"])
def test_four_loops_reach_an_easy_target_on_the_virtual_clock(bench, scheduler) -> None:
    # An easy target: the first run that finishes reaches it, so every loop must have trained (and, with the
    # scheduler, paused) runs first; the GPU-hours are the clock's, at least one run's worth.
    hours = bench.gpu_hours_to_target(2, 4, target=-math.inf, scheduler=scheduler)
    assert 0 < hours < bench.BUDGET_HOURS
