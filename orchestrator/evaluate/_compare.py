"""``lora-pipeline compare``: evaluated runs side by side (e.g. the SD1.5 and the SDXL LoRA).

Each input is a run folder, its ``evaluation/`` folder, or a ``scores.json``. The table has one column
per run (best epoch, total, the five metrics, raw CLIP-I / CLIP-T); the page adds the best epoch's
samples per prompt next to each other. Scores from different encoders are not comparable; the
comparison says so rather than refusing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_write_text
from orchestrator.common.errors import UserInputError
from orchestrator.evaluate._config import METRIC_TITLES, METRICS
from orchestrator.evaluate._report import THUMBNAIL_SIDE, thumbnail_data_uri
from orchestrator.evaluate._results import EVALUATION_FOLDER, read_scores_file
from orchestrator.evaluate._run_facts import read_run_record


@dataclass
class EvaluatedRun:
    label: str
    run_dir: Path
    scores: dict[str, Any]
    best: dict[str, Any]
    family: str | None

    @property
    def best_epoch_scores(self) -> dict[str, Any]:
        epoch = self.best.get("epoch")
        return (self.scores.get("epochs") or {}).get(str(epoch), {}) if epoch is not None else {}


def load_evaluated_run(path: str | Path) -> EvaluatedRun:
    path = Path(path)
    if path.is_file():
        scores_file = path
    elif (path / "scores.json").is_file():
        scores_file = path / "scores.json"
    else:
        scores_file = path / EVALUATION_FOLDER / "scores.json"
    scores = read_scores_file(scores_file)
    if scores is None:
        raise UserInputError("no readable evaluation scores here (run `lora-pipeline evaluate RUN_DIR` first)",
                             path=scores_file)
    # The run is the folder the scores live in now (a copied run's scores.json names the original).
    recorded = scores.get("run_dir")
    here = scores_file.parent.name == EVALUATION_FOLDER or not isinstance(recorded, str) or not recorded
    run_dir = scores_file.parent.parent if here or not isinstance(recorded, str) else Path(recorded)
    try:
        best = json.loads((scores_file.parent / "best.json").read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        best = {}
    record, _ = read_run_record(run_dir)
    return EvaluatedRun(label=run_dir.name, run_dir=run_dir, scores=scores, best=best, family=record.family)


def comparison_rows(runs: list[EvaluatedRun]) -> list[tuple[str, list[str]]]:
    """(row title, one cell per run): the side-by-side table, shared by the terminal and the page."""

    def cell(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) else "—" if value is None else str(value)

    rows = [
        ("model family", [r.family or "?" for r in runs]),
        ("best epoch", [cell(r.best.get("epoch")) for r in runs]),
        ("total", [cell(r.best.get("total")) for r in runs]),
    ]
    for metric in METRICS:
        rows.append((METRIC_TITLES[metric], [cell(r.best_epoch_scores.get("metrics", {}).get(metric)) for r in runs]))
    rows.append(("raw CLIP-I (identity)", [cell(r.best_epoch_scores.get("raw", {}).get("identity_similarity"))
                                           for r in runs]))
    rows.append(("raw CLIP-T", [cell(r.best_epoch_scores.get("raw", {}).get("clip_t")) for r in runs]))
    rows.append(("epochs scored", [str(len(r.scores.get("epochs") or {})) for r in runs]))
    rows.append(("warnings at best", [str(len(r.best_epoch_scores.get("warnings", []))) for r in runs]))
    rows.append(("checkpoint", [str(r.best.get("checkpoint") or "—") for r in runs]))
    return rows


def comparison_notes(runs: list[EvaluatedRun]) -> list[str]:
    notes = []
    encoders = {r.scores.get("encoder") for r in runs}
    if len(encoders) > 1:
        notes.append("the runs were scored with different encoders, so their numbers are not comparable: "
                     + "; ".join(f"{r.label}: {r.scores.get('encoder')}" for r in runs))
    weights = {json.dumps(r.scores.get("config", {}).get("weights"), sort_keys=True) for r in runs}
    if len(weights) > 1:
        notes.append("the runs use different metric weights: compare the metric rows, not the totals")
    ranked = sorted((r for r in runs if isinstance(r.best.get("total"), float)), key=lambda r: -r.best["total"])
    if ranked:
        notes.insert(0, f"highest total: {ranked[0].label} (epoch {ranked[0].best.get('epoch')}, "
                        f"{ranked[0].best['total']:.3f})")
    return notes


def write_comparison_page(runs: list[EvaluatedRun], output: str | Path, *,
                          thumbnail_side: int = THUMBNAIL_SIDE) -> Path:
    """A self-contained HTML page: the table, notes and the best epochs' samples per prompt."""
    head = "".join(f"<th>{escape(r.label)}</th>" for r in runs)
    body = "".join(f"<tr><td>{escape(title)}</td>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>"
                   for title, cells in comparison_rows(runs))
    notes = "".join(f"<li>{escape(n)}</li>" for n in comparison_notes(runs))
    prompts: dict[int, str] = {}
    images: dict[tuple[int, int], dict[str, Any]] = {}
    for column, run in enumerate(runs):
        prompts.update({int(k): v for k, v in (run.scores.get("prompts") or {}).items()})
        for image in run.best_epoch_scores.get("images", []):
            images[(column, int(image["prompt_index"]))] = image
    indices = sorted(set(prompts) | {index for _, index in images})
    grid_rows = []
    for index in indices:
        cells = []
        for column, run in enumerate(runs):
            image = images.get((column, index))
            src = thumbnail_data_uri(run.run_dir / image["name"], thumbnail_side) if image else None
            caption = f"identity {image['identity_similarity']:.2f}" if image and isinstance(
                image.get("identity_similarity"), float) else ""
            cells.append(f'<td><img src="{src}" alt="{escape(run.label)} prompt {index}"><br>{caption}</td>'
                         if src else "<td>—</td>")
        grid_rows.append(f"<tr><th class=\"prompt\">{index}: {escape(prompts.get(index, ''))}</th>"
                         + "".join(cells) + "</tr>")
    html = (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>LoRA comparison</title><style>"
        "body{font:14px system-ui,sans-serif;margin:24px;color:#1d232a}table{border-collapse:collapse}"
        "td,th{border-bottom:1px solid #e4e8ec;padding:4px 10px;text-align:center;vertical-align:top}"
        "th.prompt{text-align:left;font-weight:400;max-width:260px}img{width:" + str(thumbnail_side) + "px}"
        "</style></head><body><h1>LoRA comparison (best epochs)</h1>"
        f"<table id=\"comparison\"><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>"
        f"<ul>{notes}</ul><h2>Best-epoch samples per prompt</h2>"
        f"<table id=\"comparison-grid\"><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(grid_rows)}"
        "</tbody></table></body></html>"
    )
    return atomic_write_text(output, html)
