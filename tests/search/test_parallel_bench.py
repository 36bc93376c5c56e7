"""The parallel bench's GPU-hour part: four search loops on a virtual clock, with the scheduler pausing and
resuming runs on whichever loop is free (bench/parallel_search.py)."""

from __future__ import annotations

import math

import pytest

from tests.bench_support import load_bench


@pytest.fixture(scope="module")
def bench():
    return load_bench("parallel_search")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("scheduler", ["none", "first-epoch"])
def test_four_loops_reach_an_easy_target_on_the_virtual_clock(bench, scheduler) -> None:
    # An easy target: the first run that finishes reaches it, so every loop must have trained (and, with the
    # scheduler, paused) runs first; the GPU-hours are the clock's, at least one run's worth.
    hours = bench.gpu_hours_to_target(2, 4, target=-math.inf, scheduler=scheduler)
    assert 0 < hours < bench.BUDGET_HOURS
