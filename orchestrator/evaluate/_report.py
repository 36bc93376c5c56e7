"""``RUN_DIR/report.html``: one self-contained page (thumbnails as data URIs, inline CSS/JS/SVG).

Built from the files evaluation writes (``evaluation/scores.json``, ``best.json``) and the run
record, so it can be rebuilt at any time without a model: loss curve and seconds per epoch, the
best epoch and why, warnings, metric curves per epoch, the per-epoch table (raw → calibrated, the
total's interval), each gate's verdict per epoch, the calibration's floor and ceiling, the sample grid
(rows = prompts, columns = epochs, arrow keys to move), the rules behind every number and the
literature's reference points.
"""

from __future__ import annotations

import base64
import io
import json
import math
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_write_text
from orchestrator.common.errors import UserInputError
from orchestrator.evaluate._config import METRIC_TITLES, METRICS
from orchestrator.evaluate._report_tables import (
    calibration_table,
    choice_section_body,
    epochs_table,
    gates_table,
)
from orchestrator.evaluate._results import best_path, read_scores_file, scores_path
from orchestrator.evaluate._run_facts import read_run_record
from orchestrator.evaluate._svg import bar_chart, line_chart

REPORT_NAME = "report.html"
THUMBNAIL_SIDE = 160

#: Reference points quoted in the report (issue 6): DreamBooth (Ruiz et al., CVPR 2023) on Stable
#: Diffusion, real images of the same subject, and the reference workflow's threshold.
LITERATURE = (
    ("DreamBooth on Stable Diffusion", "CLIP-I 0.803 · DINO 0.668 · CLIP-T 0.305"),
    ("Real images of the subject", "CLIP-I 0.885 · DINO 0.774"),
    ("Reference workflow", "a checkpoint is good above 0.80 identity (CLIP-I)"),
)


def write_report(run_dir: str | Path, *, output: str | Path | None = None,
                 thumbnail_side: int = THUMBNAIL_SIDE) -> Path:
    """Write ``RUN_DIR/report.html`` (or ``output``) from the run's evaluation files."""
    run_dir = Path(run_dir)
    scores = read_scores_file(scores_path(run_dir))
    if scores is None:
        raise UserInputError("no readable evaluation/scores.json: run `lora-pipeline evaluate` first",
                             path=scores_path(run_dir))
    try:
        best = json.loads(best_path(run_dir).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        best = {}
    html = render_report(run_dir, scores, best, thumbnail_side=thumbnail_side)
    return atomic_write_text(Path(output) if output else run_dir / REPORT_NAME, html)


def render_report(run_dir: Path, scores: dict[str, Any], best: dict[str, Any], *, thumbnail_side: int) -> str:
    record, record_problems = read_run_record(run_dir)
    epochs = {int(k): v for k, v in (scores.get("epochs") or {}).items()}
    best_epoch = best.get("epoch")
    sections = [
        _best_section(best, scores),
        _warnings_section([*scores.get("fatal", []), *scores.get("problems", []), *record_problems], epochs, record.failure),
        _section("Sample grid", '<p class="hint">Rows are prompts, columns are epochs (★ best). Click a sample or '
                 'use the arrow keys; the number is the sample\'s identity score, red tags are flags.</p>'
                 '<div id="grid-wrap"></div><div id="detail"></div>', "grid-section"),
        _section("Metrics per epoch", _metric_charts(epochs, best_epoch)
                 + epochs_table(epochs, best_epoch, dict(record.validation_losses)),
                 "metrics-section"),
        _section("Gates per epoch", gates_table(epochs), "gates-section"),
        _section("Calibration: floor and ceiling per metric", calibration_table(scores), "calibration-section"),
        _section("Training", _training_charts(record)),
        _section("How each number is computed", _rules(scores)),
        _section("Reference points from the literature", _literature(epochs, best_epoch)),
    ]
    grid = _grid_data(run_dir, scores, epochs, best_epoch, thumbnail_side)
    css = _asset("report.css")
    script = _asset("report.js")
    title = f"LoRA evaluation · {run_dir.name}"
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title><style>{css}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><div class=\"meta\">{escape(str(run_dir))} · evaluated "
        f"{escape(str(scores.get('evaluated_at', '?')))} · encoder {escape(str(scores.get('encoder', '?')))}"
        "</div></header><main>" + "".join(sections) + "</main>"
        f"<script type=\"application/json\" id=\"grid-data\">{_json_for_script(grid)}</script>"
        f"<script>{script}</script></body></html>"
    )


def thumbnail_data_uri(path: Path, side: int) -> str | None:
    """A JPEG thumbnail of ``path`` as a data URI, or None when the file cannot be decoded."""
    from orchestrator.vision import ImageDecodeError, open_image_rgb

    try:
        image = open_image_rgb(path)
    except ImageDecodeError:
        return None
    image.thumbnail((side, side))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=82)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _grid_data(run_dir: Path, scores: dict[str, Any], epochs: dict[int, dict[str, Any]], best_epoch: Any,
               side: int) -> dict[str, Any]:
    prompt_texts = {int(k): v for k, v in (scores.get("prompts") or {}).items()}
    indices = set(prompt_texts)
    cells: dict[str, dict[str, Any]] = {}
    for epoch, data in epochs.items():
        for image in data.get("images", []):
            index = int(image["prompt_index"])
            indices.add(index)
            cells[f"{epoch}:{index}"] = {
                "src": thumbnail_data_uri(run_dir / image["name"], side),
                "identity": image.get("identity_similarity"),
                "flags": image.get("flags", []),
                "details": _image_details(image),
            }
    prompts = [{"index": i, "text": prompt_texts.get(i, "(no prompt line)")} for i in sorted(indices)]
    return {"epochs": sorted(epochs), "prompts": prompts, "cells": cells, "best": best_epoch, "thumb": side}


def _image_details(image: dict[str, Any]) -> str:
    keys = ("name", "seed", "identity_similarity", "identity", "mean_similarity_to_others", "style",
            "style_centroid_similarity", "style_target_probability", "clip_t", "prompt_adherence", "technical",
            "nearest_training_image", "nearest_training_similarity", "copied", "flags")
    # Plain text: the page shows it with textContent, so HTML escaping here would show as "&#x27;".
    lines = [f"{key}: {_plain(image.get(key))}" for key in keys if image.get(key) not in (None, [], "")]
    parts = image.get("technical_parts") or {}
    if parts:
        lines.append("technical parts: " + ", ".join(f"{k} {_plain(v)}" for k, v in parts.items()))
    return "\n".join(lines)


def _best_section(best: dict[str, Any], scores: dict[str, Any]) -> str:
    body = ""
    if best.get("epoch") is None:
        body = "<p class=\"big\">No best epoch</p>"
    else:
        runner = best.get("runner_up") or {}
        body = (f"<p class=\"big\">Best epoch {best['epoch']} · total {_fmt(best.get('total'))}</p>"
                f"<p>Checkpoint: <code>{escape(str(best.get('checkpoint')))}</code></p>")
        if runner.get("epoch") is not None:
            body += f"<p>Runner-up: epoch {runner['epoch']} ({_fmt(runner.get('total'))})</p>"
    body += "<h3>Why this epoch</h3>" + choice_section_body(best)
    weights = scores.get("config", {}).get("weights", {})
    body += "<p class=\"hint\">Weights: " + ", ".join(
        f"{METRIC_TITLES.get(k, k)} {v:g}" for k, v in weights.items()) + "</p>"
    return _section("Best checkpoint", body, "best-callout")


def _warnings_section(problems: list[str], epochs: dict[int, dict[str, Any]], failure: str | None) -> str:
    items = [escape(p) for p in problems]
    if failure:
        items.insert(0, f"training failed: {escape(failure)}")
    for epoch, data in sorted(epochs.items()):
        items.extend(f"epoch {epoch}: {escape(w)}" for w in data.get("warnings", []))
    body = ("<ul class=\"warnings\">" + "".join(f"<li>{i}</li>" for i in items) + "</ul>") if items else \
        "<p class=\"warnings none\">No warnings: no copying, collapse, NaN loss or black images found.</p>"
    return _section(f"Warnings ({len(items)})", body)


def _metric_charts(epochs: dict[int, dict[str, Any]], best_epoch: Any) -> str:
    series = {METRIC_TITLES[m]: [(float(e), _num(d["metrics"].get(m))) for e, d in sorted(epochs.items())]
              for m in METRICS}
    series["total"] = [(float(e), _num(d.get("total"))) for e, d in sorted(epochs.items())]
    chart = line_chart(series, title="Metrics per epoch (0..1)", x_label="epoch", y_label="score",
                       highlight_x=float(best_epoch) if best_epoch is not None else None, y_range=(0.0, 1.0),
                       width=720, height=300)
    return f"<div class=\"charts\">{chart}</div>"


def _training_charts(record: Any) -> str:
    losses = [(float(p.step), p.loss) for p in record.losses]
    series = {"average loss": losses}
    # Each validation loss sits on the training curve at the last step of its epoch (sd-scripts validates
    # there), so the two can be read against each other; the chart by epoch stays for runs without steps.
    last_step = {p.epoch: float(p.step) for p in record.losses if p.epoch is not None}
    on_steps = [(last_step[e], v) for e, v in record.validation_losses if e in last_step]
    if on_steps:
        series["validation loss (end of epoch)"] = on_steps
    charts = [line_chart(series, title="Training loss", x_label="step", y_label="loss")]
    if record.validation_losses and not on_steps:
        charts.append(line_chart({"validation loss": [(float(e), v) for e, v in record.validation_losses]},
                                 title="Validation loss", x_label="epoch", y_label="loss"))
    times = sorted((float(e), s) for e, s in record.epoch_seconds.items())
    charts.append(bar_chart(times, title="Seconds per epoch", x_label="epoch", y_label="seconds"))
    nan_steps = [int(x) for x, y in losses if math.isnan(y)]
    note = f"<p class=\"warnings\">NaN loss at steps {nan_steps[:10]}</p>" if nan_steps else ""
    if not losses and not times:
        note += "<p class=\"hint\">No run record (run.json) with losses or epoch times.</p>"
    return note + "<div class=\"charts\">" + "".join(charts) + "</div>"


def _rules(scores: dict[str, Any]) -> str:
    config = scores.get("config", {})
    rules = config.get("rules", {})
    items = "".join(f"<dt>{escape(METRIC_TITLES.get(k, k))}</dt><dd>{escape(str(v))}</dd>" for k, v in rules.items())
    return (f"<p class=\"hint\">Settings: {escape(str(config.get('source', '?')))}</p>"
            f"<dl class=\"rules\">{items}</dl>")


def _literature(epochs: dict[int, dict[str, Any]], best_epoch: Any) -> str:
    rows = "".join(f"<tr><td>{escape(a)}</td><td>{escape(b)}</td></tr>" for a, b in LITERATURE)
    if best_epoch in epochs:
        raw = epochs[best_epoch].get("raw", {})
        rows += (f"<tr class=\"best-row\"><td>This run, best epoch {best_epoch}</td><td>CLIP-I "
                 f"{_fmt(raw.get('identity_similarity'))} · CLIP-T {_fmt(raw.get('clip_t'))}</td></tr>")
    return ("<table class=\"scores\"><tbody>" + rows + "</tbody></table><p class=\"hint\">Comparable only with "
            "the same encoder (ViT-L-14 openai for the literature's CLIP numbers) and real weights; CLIP-I here "
            "is the identity rule over the references, not a mean over all pairs.</p>")


def _section(title: str, body: str, css_class: str = "") -> str:
    attribute = f' class="{css_class}"' if css_class else ""
    return f"<section{attribute}><h2>{escape(title)}</h2>{body}</section>"


def _asset(name: str) -> str:
    return (resources.files("orchestrator.evaluate") / "report_assets" / name).read_text(encoding="utf-8")


def _json_for_script(data: Any) -> str:
    # "</" inside a <script> block would end it early.
    return json.dumps(data, allow_nan=False).replace("</", "<\\/")


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else float("nan")


def _plain(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(item) for item in value)
    if isinstance(value, float) and not isinstance(value, bool):
        return f"{value:.3f}" if math.isfinite(value) else "—"
    return "—" if value is None else str(value)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, float):
        return escape(str(value))
    return f"{value:.3f}" if math.isfinite(value) else "—"
