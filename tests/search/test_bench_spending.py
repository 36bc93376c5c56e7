"""The search bench's account of where GPU-hours go before the target (pure, no search run)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "search_efficiency.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("search_efficiency_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_hours_are_sorted_by_what_each_trial_turned_out_to_be(bench):
    hour = 3600.0
    point = bench.TrialPoint
    points = [point("complete", 0.70, 0.71, 5 * hour, 16)] * 5 + [
        point("pruned", None, None, 0.5 * hour, 2),
        point("complete", 0.72, 0.73, 6 * hour, 16),  # beats 0.70: a new best
        point("complete", 0.71, 0.72, 4 * hour, 12),  # below 0.72: no better
        point("pruned", None, None, 5.5 * hour, 18),
        point("complete", 0.80, 0.81, 6 * hour, 20),  # reaches the target: the count stops here
        point("complete", 0.81, 0.82, 6 * hour, 20),
    ]
    spent = bench.where_hours_go(points, target=0.80)
    assert spent == {"start-up": 25.0, "new best": 12.0, "no better": 4.0,
                     "pruned by epoch 4": 0.5, "pruned later": 5.5}


def test_a_target_never_reached_counts_every_trial(bench):
    points = [bench.TrialPoint("complete", 0.7, 0.7, 3600.0, 10)] * 7
    spent = bench.where_hours_go(points, target=0.9)
    assert sum(spent.values()) == pytest.approx(7.0)
    assert spent["start-up"] == 5.0 and spent["no better"] == 2.0
