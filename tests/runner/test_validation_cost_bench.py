"""bench/validation_cost.py reads its timings from the real transcripts (no trainer is run)."""

from __future__ import annotations

import pytest

from tests.bench_support import load_bench


@pytest.fixture(scope="module")
def bench():
    return load_bench("validation_cost")


def test_each_validated_epoch_of_a_real_run_gives_one_pass_time_and_steps_give_step_times(bench):
    runs = bench.runs(bench.TRANSCRIPTS / "cpu_run_transcript.log")
    steps, passes = bench.timings(runs["RUN B"])
    # RUN B: 2 epochs of 3 steps, each epoch validated (4 passes at 2.56 it/s, then 2.55 it/s; the
    # bars' later re-draws, at other rates, are not passes).
    assert len(passes) == 2 and passes[0] == pytest.approx(1 / 2.56, rel=1e-3)
    assert len(steps) == 4 and all(step > 0 for step in steps)


def test_holding_a_tenth_out_is_compute_neutral_for_the_luca_preset(bench):
    cost = bench.preset_cost("luca_final_v1_pure", 413, 0.1, bench.GPU_FORWARD_SHARE)
    assert (cost["trained"], cost["held"], cost["every"]) == (372, 41, 2)
    assert 0.1 < cost["validation_vs_epoch"] < 0.2 and cost["net_vs_full_data"] < 0
