"""The search bench's account of where GPU-hours go before the target (pure, no search run)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.bench_support import load_bench

BENCH = Path(__file__).resolve().parents[2] / "bench" / "search_efficiency.py"


@pytest.fixture(scope="module")
def bench():
    return load_bench("search_efficiency")


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


def test_a_pruned_config_that_would_have_beaten_the_best_found_counts_as_a_winner_pruned(bench):
    point = bench.TrialPoint
    found = [point("complete", 0.79, 0.790, 3600.0, 16), point("complete", 0.80, 0.785, 3600.0, 16)]
    assert not bench.winner_pruned(found + [point("pruned", None, None, 1800.0, 8, full_run=0.7915)])
    assert bench.winner_pruned(found + [point("pruned", None, None, 1800.0, 8, full_run=0.7925)])


def test_the_search_hands_over_its_best_observed_trial_within_the_budget(bench):
    point = bench.TrialPoint
    points = [point("complete", 0.79, 0.770, 3600.0, 16),  # observed best so far, truly 0.770
              point("complete", 0.78, 0.785, 3600.0, 16),  # truly better but observed lower
              point("pruned", None, None, 1800.0, 6, full_run=0.79),
              point("complete", 0.81, 0.800, 3600.0, 16)]  # beyond a 2.5-hour budget
    assert bench.handed_over(points, 2.5 * 3600) == 0.770
    assert bench.handed_over(points, 10 * 3600) == 0.800
    assert bench.handed_over(points[2:3], 10 * 3600) is None


def test_the_bench_runs_a_plugin_surface_from_a_folder(tmp_path):
    import subprocess

    spec = importlib.util.spec_from_file_location("surface_tests", Path(__file__).with_name("test_surfaces.py"))
    surface_tests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(surface_tests)
    (tmp_path / "plugin_surface.py").write_text(surface_tests.PLUGIN)
    result = subprocess.run(
        [sys.executable, str(BENCH), "--surface", "plugin_surface:Flat", "--surface-path", str(tmp_path),
         "--seeds", "1", "--gpu-hours", "15", "--workers", "1"],
        capture_output=True, text=True, timeout=60)  # ~20 s here; minutes meant a regression
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("plugin_surface:Flat")]
    assert [row[1] for row in rows] == ["guide", "ours", "prune", "pause"]
    missing = subprocess.run([sys.executable, str(BENCH), "--surface", "plugin_surface:Nope", "--surface-path",
                              str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "has no class 'Nope'" in missing.stderr
