"""``lora-pipeline search analyze OUTPUT``: what the search found, as files a person can read.

Reads ``trial_results.json`` (and the study, for parameter importances) and writes into
``OUTPUT/analysis/``: ``analysis.json`` + ``summary.md`` (best trial, best epoch per trial, learning-rate
and dim/alpha effects, scheduler comparison, importances), PNG plots, and into ``OUTPUT/``:
``best_parameters.json`` and ``best_trial_config.toml`` (a preset to train the winner again).
The effect tables are plain grouped statistics over completed trials; with few trials they say so
instead of pretending to know.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_write_json, atomic_write_text
from orchestrator.common.tomlfile import read_toml, write_toml
from orchestrator.search.gpu_time import phase_summary, phase_table
from orchestrator.search.results import load_results
from orchestrator.search.vocabulary import COMPLETE

MIN_TRIALS_FOR_IMPORTANCE = 4  # fANOVA on fewer completed trials ranks noise
ANALYSIS_DIR = "analysis"


@dataclass
class Analysis:
    """What ``search analyze`` found (written as ``analysis.json``; ``plots.py`` draws its tables)."""

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
    gpu_time: list[dict[str, Any]] = field(default_factory=list)  # each scheduled run's phase and segments


def completed(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e["outcome"] == COMPLETE and e["value"] is not None]


def _stats(values: Sequence[float]) -> dict[str, Any]:
    return {"trials": len(values), "mean": sum(values) / len(values), "best": max(values)}


def learning_rate_effect(entries: Sequence[dict[str, Any]], bins: int = 3) -> list[dict[str, Any]]:
    """Completed trials in equal-width bins of log10(learning rate): mean and best score per bin."""
    points = [(float(e["params"]["learning_rate"]), float(e["value"])) for e in entries
              if "learning_rate" in e["params"]]
    if not points:
        return []
    logs = [math.log10(lr) for lr, _ in points]
    low, high = min(logs), max(logs)
    width = (high - low) / bins or 1.0
    groups: dict[int, list[tuple[float, float]]] = {}
    for (lr, value), log_lr in zip(points, logs, strict=True):
        groups.setdefault(min(int((log_lr - low) / width), bins - 1), []).append((lr, value))
    return [
        {"from": min(lr for lr, _ in group), "to": max(lr for lr, _ in group),
         **_stats([value for _, value in group])}
        for _, group in sorted(groups.items())
    ]


def grouped_effect(entries: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """Mean and best score of completed trials per combination of ``keys`` (params, then overrides)."""
    groups: dict[tuple[Any, ...], list[float]] = {}
    for entry in entries:
        values = {**entry.get("overrides", {}), **entry["params"]}
        if all(key in values for key in keys):
            groups.setdefault(tuple(values[key] for key in keys), []).append(float(entry["value"]))
    rows = [{**dict(zip(keys, group, strict=True)), **_stats(scores)} for group, scores in groups.items()]
    return sorted(rows, key=lambda row: -row["mean"])


def best_epochs_table(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"number": e["number"], "outcome": e["outcome"], "best_epoch": e["best_epoch"],
         # a scheduled run's phase (trained / paused / resumed / finished / stopped) and its trained stretches
         "phase": e.get("phase"), "stretches": len(e.get("segments") or []),
         "planned_epochs": e["params"].get("max_train_epochs"), "best_score": e["best_score"],
         "last_validation_loss": (e.get("last_validation_loss") or {}).get("loss")}
        for e in entries if e["best_epoch"] is not None
    ]


def parameter_importances(output: Path, results: dict[str, Any], storage_url: str | None,
                          notes: list[str]) -> dict[str, float]:
    done = completed(results["trials"])
    if len(done) < MIN_TRIALS_FOR_IMPORTANCE:
        notes.append(f"parameter importances need at least {MIN_TRIALS_FOR_IMPORTANCE} completed trials "
                     f"(have {len(done)})")
        return {}
    import optuna

    from orchestrator.search.storage import default_storage_url, load_study

    try:
        study = load_study(storage_url or default_storage_url(output), results["study_name"])
        importances = optuna.importance.get_param_importances(study)
    except Exception as error:  # an unreachable storage must not cost the rest of the analysis
        notes.append(f"parameter importances unavailable: {type(error).__name__}: {error}")
        return {}
    return {name: round(float(value), 4) for name, value in importances.items()}


def analyze(output: Path, *, storage_url: str | None = None) -> Analysis:
    results = load_results(output)
    entries = results["trials"]
    done = completed(entries)
    notes: list[str] = []
    if not done:
        notes.append("no completed trial yet: nothing to compare")
    elif len(done) < 5:
        notes.append(f"only {len(done)} completed trials: the effect tables below are anecdotes, not trends")
    analysis = Analysis(
        best=results.get("best"),
        best_epochs=best_epochs_table(entries),
        learning_rate=learning_rate_effect(done),
        dim_alpha=grouped_effect(done, ["network_dim", "network_alpha"]),
        schedulers=grouped_effect(done, ["lr_scheduler"]),
        importances=parameter_importances(output, results, storage_url, notes),
        notes=notes,
        counts=dict(results.get("counts", {})),
        gpu_time=phase_table(entries),
    )
    if any(entry.get("prior") for entry in entries):
        from orchestrator.search.prior_report import prior_section, read_study_prior
        from orchestrator.search.storage import default_storage_url

        attr, space = read_study_prior(storage_url or default_storage_url(output), results["study_name"], notes)
        analysis.prior = prior_section(entries, attr, space)
    folder = output / ANALYSIS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    from orchestrator.search.plots import write_plots

    analysis.plots = [str(path) for path in write_plots(folder, entries, analysis)]
    atomic_write_json(folder / "analysis.json", analysis.__dict__)
    atomic_write_text(folder / "summary.md", summary_markdown(analysis))
    if analysis.best is not None:
        write_best_files(output, results, analysis.best)
    return analysis


def write_best_files(output: Path, results: dict[str, Any], best: dict[str, Any]) -> None:
    atomic_write_json(output / "best_parameters.json", {
        "study_name": results["study_name"], "trial": best["number"], "score": best["value"],
        "best_epoch": best["best_epoch"], "checkpoint": best["checkpoint"],
        "parameters": best["params"], "training_overrides": best["overrides"],
    })
    entry = next(e for e in results["trials"] if e["number"] == best["number"])
    config_path = Path(entry["directory"] or "") / "config.toml"
    if not config_path.is_file():
        return  # a trial trained by a worker on another machine: its folder lives there
    preset = read_toml(config_path, what="trial config")
    preset.setdefault("preset", {})
    preset["preset"]["name"] = f"{results['study_name']}_trial_{best['number']:04d}"
    preset["preset"]["description"] = (f"best trial {best['number']} of search {results['study_name']}: "
                                       f"score {best['value']:.4f} at epoch {best['best_epoch']}")
    header = (f"# Ready to train: the best trial ({best['number']}) of {results['study_name']}.\n"
              f"# Its best checkpoint was epoch {best['best_epoch']}: {best['checkpoint']}\n"
              "# Train again with: lora-pipeline train THIS_FILE\n\n")
    write_toml(output / "best_trial_config.toml", preset, header=header)


def summary_markdown(analysis: Analysis) -> str:
    lines = ["# Hyperparameter search: analysis", ""]
    lines += [f"- {note}" for note in analysis.notes]
    lines.append(f"- trials by outcome: {analysis.counts}")
    phases: dict[str, int] = {}
    for row in analysis.best_epochs:
        if row.get("phase"):
            phases[row["phase"]] = phases.get(row["phase"], 0) + 1
    if phases:  # a scheduled search (scheduled.py): how its runs ended
        lines.append(f"- runs by phase: {phases}")
    if analysis.best:
        best = analysis.best
        lines += ["", f"## Best trial: {best['number']} (score {best['value']:.4f}, epoch {best['best_epoch']})",
                  "", f"checkpoint: `{best['checkpoint']}`", ""]
        lines += [f"- {key} = {value}" for key, value in best["params"].items()]
    if analysis.gpu_time:
        lines += ["", "## Where the GPU-hours went", "",
                  str(phase_summary(analysis.gpu_time)), "", _table(analysis.gpu_time)]
    for title, rows in (("Best epoch per trial", analysis.best_epochs), ("Learning rate", analysis.learning_rate),
                        ("Dim / alpha", analysis.dim_alpha), ("Scheduler", analysis.schedulers)):
        lines += ["", f"## {title}", ""]
        lines += [_table(rows)] if rows else ["(no data)"]
    lines += ["", "## Parameter importances (fANOVA)", ""]
    lines += [f"- {name}: {value:.3f}" for name, value in analysis.importances.items()] or ["(not computed)"]
    if analysis.prior is not None:
        from orchestrator.search.prior_report import prior_markdown

        lines += prior_markdown(analysis.prior)
    return "\n".join(lines) + "\n"


def _table(rows: Sequence[dict[str, Any]]) -> str:
    keys = list(rows[0])
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        out.append("| " + " | ".join(_cell(row[key]) for key in keys) + " |")
    return "\n".join(out)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
