"""PNG plots of a search (matplotlib with the Agg back-end: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from orchestrator.search.gpu_time import timeline
from orchestrator.search.vocabulary import (
    COMPLETE,
    FAILED,
    PHASE_EVICTED,
    PHASE_FINISHED,
    PHASE_PAUSED,
    PHASE_RESUMED,
    PHASE_STOPPED,
    PHASE_TRAINING,
    PRUNED,
)

_OUTCOME_COLOURS = {COMPLETE: "tab:blue", PRUNED: "tab:orange", FAILED: "tab:red"}
_PHASE_COLOURS = {PHASE_FINISHED: "tab:blue", PHASE_PAUSED: "tab:olive", PHASE_RESUMED: "tab:green",
                  PHASE_TRAINING: "tab:green", PHASE_STOPPED: "tab:orange", PHASE_EVICTED: "tab:purple",
                  FAILED: "tab:red"}
GPU_TIME_PLOT = "gpu_time.png"


class Effects(Protocol):
    """The tables of ``analyze.Analysis`` that have a plot."""

    dim_alpha: list[dict[str, Any]]
    schedulers: list[dict[str, Any]]
    importances: dict[str, float]


def write_plots(folder: Path, entries: Sequence[dict[str, Any]], analysis: Effects) -> list[Path]:
    """Every plot that has data; returns the files written."""
    import logging

    import matplotlib

    matplotlib.use("Agg")
    # Trial numbers as bar labels are strings on purpose; matplotlib logs a notice for each such plot.
    logging.getLogger("matplotlib.category").setLevel(logging.WARNING)
    import matplotlib.pyplot as plt

    written: list[Path] = []

    def save(fig: Any, name: str) -> None:
        path = folder / name
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    trained = [e for e in entries if e["outcome"] in _OUTCOME_COLOURS and e["best_score"] is not None]
    if trained:
        fig, ax = plt.subplots(figsize=(7, 4))
        ordered = sorted(trained, key=lambda e: e["number"])
        for outcome, colour in _OUTCOME_COLOURS.items():
            points = [(e["number"], e["best_score"]) for e in ordered if e["outcome"] == outcome]
            if points:
                ax.scatter(*zip(*points, strict=True), c=colour, label=outcome)
        running_best: list[float] = []
        for entry in ordered:
            value = entry["best_score"] if entry["outcome"] == COMPLETE else float("-inf")
            running_best.append(max(value, running_best[-1] if running_best else float("-inf")))
        steps = [(e["number"], b) for e, b in zip(ordered, running_best, strict=True) if b != float("-inf")]
        if steps:
            ax.step(*zip(*steps, strict=True), where="post", c="black", label="best so far")
        ax.set(xlabel="trial", ylabel="best epoch score", title="Optimisation history")
        ax.legend()
        save(fig, "history.png")

        fig, ax = plt.subplots(figsize=(7, 4))
        for outcome, colour in _OUTCOME_COLOURS.items():
            points = [(e["params"]["learning_rate"], e["best_score"]) for e in trained
                      if e["outcome"] == outcome and "learning_rate" in e["params"]]
            if points:
                ax.scatter(*zip(*points, strict=True), c=colour, label=outcome)
        ax.set(xscale="log", xlabel="learning rate", ylabel="best epoch score", title="Learning rate")
        ax.legend()
        save(fig, "learning_rate.png")

        fig, ax = plt.subplots(figsize=(8, 4))
        numbers = [str(e["number"]) for e in ordered]
        ax.bar(numbers, [e["params"].get("max_train_epochs") or 0 for e in ordered], color="lightgrey",
               label="planned epochs")
        ax.bar(numbers, [e["best_epoch"] or 0 for e in ordered], color="tab:green", label="best epoch")
        ax.set(xlabel="trial", ylabel="epoch", title="Best epoch per trial")
        ax.legend()
        save(fig, "best_epochs.png")

    if analysis.dim_alpha:
        fig, ax = plt.subplots(figsize=(7, 4))
        rows = analysis.dim_alpha
        scatter = ax.scatter([r["network_dim"] for r in rows], [r["network_alpha"] for r in rows],
                             c=[r["mean"] for r in rows], s=[40 + 30 * r["trials"] for r in rows], cmap="viridis")
        fig.colorbar(scatter, ax=ax, label="mean score")
        ax.set(xlabel="network_dim", ylabel="network_alpha", title="Dim / alpha (size = trials)")
        save(fig, "dim_alpha.png")

    if analysis.schedulers:
        fig, ax = plt.subplots(figsize=(6, 4))
        names = [str(r["lr_scheduler"]) for r in analysis.schedulers]
        ax.bar(names, [r["mean"] for r in analysis.schedulers], color="tab:blue", label="mean")
        ax.scatter(names, [r["best"] for r in analysis.schedulers], c="black", zorder=3, label="best")
        ax.set(ylabel="score", title="Scheduler comparison")
        ax.legend()
        save(fig, "schedulers.png")

    if analysis.importances:
        fig, ax = plt.subplots(figsize=(7, 4))
        names = list(analysis.importances)[::-1]
        ax.barh(names, [analysis.importances[n] for n in names], color="tab:purple")
        ax.set(xlabel="importance (fANOVA)", title="Parameter importances")
        save(fig, "importances.png")

    bars, axis = timeline(entries)
    if bars:  # a scheduled search: where its GPU-hours went
        fig, ax = plt.subplots(figsize=(8, max(2.5, 0.35 * len(bars) + 1.2)))
        for row, bar in enumerate(bars):
            ax.broken_barh(list(bar.spans), (row - 0.35, 0.7), color=_PHASE_COLOURS.get(bar.phase, "tab:gray"),
                           edgecolor="black", linewidth=0.5)
        ax.set_yticks(range(len(bars)), [f"trial {bar.number} ({bar.phase})" for bar in bars])
        ax.invert_yaxis()
        ax.set(xlabel=axis, title="Where the GPU-hours went (one bar per run; gaps are pauses)")
        save(fig, GPU_TIME_PLOT)
    return written
