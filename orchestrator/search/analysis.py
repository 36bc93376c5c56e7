"""What ``search analyze`` found; shared by the analysis and its plots."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Analysis:
    best: dict[str, Any] | None
    best_epochs: list[dict[str, Any]]
    learning_rate: list[dict[str, Any]]
    dim_alpha: list[dict[str, Any]]
    schedulers: list[dict[str, Any]]
    importances: dict[str, float]
    notes: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    prior: dict[str, Any] | None = None  # what came from a prior study and whether it held (prior_report.py)
