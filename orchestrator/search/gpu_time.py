"""Where a scheduled search's GPU-hours went: each run's trained stretches (``segments``, scheduled.py) and
how it stands (training, paused, resumed, finished, stopped, evicted), read from ``trial_results.json``.

Pure functions on the results file's trial entries; ``plots.py`` draws :func:`timeline` (one bar per run,
its segments over time, pauses as gaps), ``analyze.py`` writes :func:`phase_table`, and ``search status``
prints :func:`phase_summary` of that table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Bar:
    """One run on the timeline: its segments as ``(start, length)`` in hours, and its phase."""

    number: int
    phase: str
    spans: tuple[tuple[float, float], ...]


def _started(segment: Sequence[Any]) -> dt.datetime | None:
    if len(segment) < 4 or not segment[3]:
        return None
    try:
        started = dt.datetime.fromisoformat(str(segment[3]))
    except ValueError:
        return None
    return started if started.tzinfo else started.replace(tzinfo=dt.timezone.utc)


def timeline(entries: Sequence[dict[str, Any]]) -> tuple[list[Bar], str]:
    """The bars, and what their time axis is. When every segment names its trainer's start (real runs), the
    axis is wall-clock hours since the first one, so a pause shows as a gap; else (the simulator) it is the
    search's GPU-hours, segments laid end to end in trial order."""
    runs = [entry for entry in entries if entry.get("segments")]
    starts = [_started(segment) for entry in runs for segment in entry["segments"]]
    bars = []
    if runs and all(start is not None for start in starts):
        origin = min(start for start in starts if start is not None)
        for entry in runs:
            timed = tuple(((_started(s) - origin).total_seconds() / 3600.0, float(s[2]) / 3600.0)  # type: ignore[operator]
                          for s in entry["segments"])
            bars.append(Bar(int(entry["number"]), _phase(entry), timed))
        return bars, "wall-clock hours since the first segment"
    clock = 0.0
    for entry in sorted(runs, key=lambda e: e["number"]):
        spans: list[tuple[float, float]] = []
        for segment in entry["segments"]:
            spans.append((clock, float(segment[2]) / 3600.0))
            clock += float(segment[2]) / 3600.0
        bars.append(Bar(int(entry["number"]), _phase(entry), tuple(spans)))
    return bars, "GPU-hours of the search (segments end to end, by trial)"


def phase_table(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per scheduled run: its phase, its segments and GPU-hours, its best score so far."""
    return [{"trial": entry["number"], "phase": _phase(entry), "segments": len(entry["segments"]),
             "epochs": "; ".join(f"{s[0]}-{s[1]}" for s in entry["segments"]),
             "gpu_hours": round(sum(float(s[2]) for s in entry["segments"]) / 3600.0, 3),
             "best_score": entry.get("best_score"), "reason": entry.get("reason") if _phase(entry) in
             ("paused", "evicted", "stopped") else None}
            for entry in entries if entry.get("segments")]


def phase_summary(rows: Sequence[dict[str, Any]]) -> str | None:
    """``GPU time by phase: finished 1.2 h (3 runs), paused 0.4 h (2 runs), ...`` of :func:`phase_table`'s
    rows; None without runs."""
    totals: dict[str, tuple[float, int]] = {}
    for row in rows:
        hours, runs = totals.get(row["phase"], (0.0, 0))
        totals[row["phase"]] = (hours + row["gpu_hours"], runs + 1)
    if not totals:
        return None
    parts = [f"{phase} {hours:.2f} h ({runs} run{'s' if runs != 1 else ''})"
             for phase, (hours, runs) in sorted(totals.items(), key=lambda item: -item[1][0])]
    return "GPU time by phase: " + ", ".join(parts)


def _phase(entry: dict[str, Any]) -> str:
    return str(entry.get("phase") or entry.get("outcome") or "unknown")
