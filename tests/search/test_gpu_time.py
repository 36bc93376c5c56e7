"""Where a scheduled search's GPU-hours went: ``search status``, ``search analyze`` (table and plot) and the
results show each run's phase and trained stretches (gpu_time.py)."""

from __future__ import annotations

import json

from orchestrator.search.analyze import ANALYSIS_DIR, analyze
from orchestrator.search.gpu_time import phase_summary, phase_table, timeline
from orchestrator.search.monitor import status_lines
from orchestrator.search.plots import GPU_TIME_PLOT
from orchestrator.search.simulator import STATE_BYTES, SimulatedExecutor
from orchestrator.search.study import Search, SearchSettings
from orchestrator.search.surfaces import SURFACE_FAMILIES
from tests.search.test_scheduler import BASE, SPACE


def entry(number: int, phase: str, segments: list[list], **more) -> dict:
    return {"number": number, "phase": phase, "outcome": "complete", "segments": segments, "best_score": 0.5,
            "reason": None, **more}


def test_real_segments_lie_on_the_wall_clock_and_a_pause_is_a_gap() -> None:
    entries = [entry(0, "finished", [[1, 2, 1800.0, "2026-12-07T05:00:00+00:00"],
                                     [3, 4, 1800.0, "2026-12-07T07:00:00+00:00"]]),
               entry(1, "paused", [[1, 2, 3600.0, "2026-12-07T05:30:00"]]),  # naive: read as UTC
               entry(2, "rejected", [])]
    bars, axis = timeline(entries)
    assert axis.startswith("wall-clock")
    assert [bar.number for bar in bars] == [0, 1]
    assert bars[0].spans == ((0.0, 0.5), (2.0, 0.5))  # trained 0-0.5 h, paused 0.5-2 h, trained again
    assert bars[1].spans == ((0.5, 1.0),)


def test_segments_without_a_start_are_laid_end_to_end_in_gpu_hours() -> None:
    bars, axis = timeline([entry(0, "finished", [[1, 2, 3600.0], [3, 4, 1800.0]]),
                           entry(1, "evicted", [[1, 2, 1800.0]])])
    assert axis.startswith("GPU-hours")
    assert bars[0].spans == ((0.0, 1.0), (1.0, 0.5)) and bars[1].spans == ((1.5, 0.5),)


def test_the_phase_table_and_summary_say_where_the_hours_went() -> None:
    rows = phase_table([entry(0, "finished", [[1, 2, 3600.0], [3, 4, 3600.0]]),
                        entry(1, "evicted", [[1, 2, 1800.0]], reason="state evicted: over budget"),
                        entry(2, "paused", [[1, 2, 1800.0]])])
    assert rows[0] == {"trial": 0, "phase": "finished", "segments": 2, "epochs": "1-2; 3-4", "gpu_hours": 2.0,
                       "best_score": 0.5, "reason": None}
    assert rows[1]["reason"] == "state evicted: over budget"
    assert phase_summary(rows) == ("GPU time by phase: finished 2.00 h (1 run), evicted 0.50 h (1 run), "
                                   "paused 0.50 h (1 run)")
    assert phase_summary([]) is None


def test_status_and_analyze_of_a_scheduled_search_show_each_run_and_draw_the_timeline(tmp_path) -> None:
    settings = SearchSettings(space=SPACE, base_config=BASE, output=tmp_path, trials=8, seed=3, pruner="none",
                              scheduler="first-epoch", state_budget_bytes=STATE_BYTES + STATE_BYTES // 2)
    Search(settings, SimulatedExecutor(surface=SURFACE_FAMILIES["quadratic"](seed=4))).run()
    results = json.loads((tmp_path / "trial_results.json").read_text())
    lines = status_lines(tmp_path)
    assert any(line.startswith("GPU time by phase: ") for line in lines), lines
    assert any(line.startswith("best checkpoint so far: trial ") for line in lines), lines
    evicted = [e for e in results["trials"] if e["phase"] == "evicted"]
    assert evicted and all(f"evicted: trial {e['number']} (state evicted" in "\n".join(lines) for e in evicted)

    analysis = analyze(tmp_path)
    folder = tmp_path / ANALYSIS_DIR
    assert (folder / GPU_TIME_PLOT).stat().st_size > 1000 and str(folder / GPU_TIME_PLOT) in analysis.plots
    phases = {row["phase"] for row in analysis.gpu_time}
    assert "evicted" in phases and phases <= {"finished", "evicted", "stopped"}
    assert json.loads((folder / "analysis.json").read_text())["gpu_time"] == analysis.gpu_time
    assert "## Where the GPU-hours went" in (folder / "summary.md").read_text()
