"""The report's evaluation tables: raw beside calibrated values, floor and ceiling per metric,
every gate's verdict per epoch, the interval of each total, and the reasons of the choice.

Pure functions from the dictionaries of scores.json / best.json to HTML fragments (the page is
assembled in ``_report.py``). Schema-1 files (no calibration, no gates) render with "—".
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from orchestrator.evaluate._config import METRIC_TITLES, METRICS
from orchestrator.evaluate._gates import GATES
from orchestrator.evaluate._metrics import RAW_KEYS


def choice_section_body(best: dict[str, Any]) -> str:
    """Why the choice fell where it did: leader, epochs within its noise, gate exclusions."""
    if best.get("epoch") is None:
        return f"<p class=\"reason\">{escape(str(best.get('reason') or 'not evaluated'))}</p>"
    facts = [f"<li>chosen: epoch <b class=\"chosen\">{best['epoch']}</b>, total {fmt(best.get('total'))} "
             f"{interval_text(best.get('interval'))}</li>"]
    if best.get("leader") is not None:
        facts.append(f"<li>highest total: epoch <span class=\"leader\">{best['leader']}</span></li>")
    if best.get("within_noise"):
        facts.append("<li>within the noise of the highest: epochs <span class=\"within-noise\">"
                     + ", ".join(str(e) for e in best["within_noise"]) + "</span> (the earliest is preferred)</li>")
    if best.get("clean") is False:
        facts.append("<li class=\"not-clean\">no epoch passes every gate: the least bad was chosen</li>")
    for epoch, gates in sorted((best.get("excluded") or {}).items(), key=lambda kv: int(kv[0])):
        facts.append(f"<li class=\"excluded\" data-epoch=\"{escape(str(epoch))}\">epoch {escape(str(epoch))} not "
                     f"eligible: failed {escape(', '.join(gates))}</li>")
    return (f"<p class=\"reason\">{escape(str(best.get('reason', '')))}</p>"
            f"<ul class=\"choice-facts\">{''.join(facts)}</ul>")


def calibration_table(scores: dict[str, Any]) -> str:
    """Floor and ceiling per metric, where each comes from, and the fallback when one was used."""
    calibration = scores.get("calibration") or {}
    metrics = calibration.get("metrics") or {}
    if not metrics:
        return "<p class=\"hint\">No calibration in this scores.json (written before calibration existed).</p>"
    rows = []
    for metric in METRICS:
        data = metrics.get(metric)
        if data is None:
            continue
        fallback = data.get("fallback")
        rows.append(f"<tr data-metric=\"{metric}\"><td>{escape(METRIC_TITLES.get(metric, metric))}</td>"
                    f"<td class=\"floor\">{fmt(data.get('floor'))}</td><td class=\"ceiling\">"
                    f"{fmt(data.get('ceiling'))}</td><td>{escape(str(data.get('floor_source', '')))}</td>"
                    f"<td>{escape(str(data.get('ceiling_source', '')))}</td><td class=\"fallback\">"
                    f"{escape(str(fallback)) if fallback else 'none: both measured'}</td></tr>")
    return (f"<p class=\"hint\">Measured on {calibration.get('base_samples', 0)} base-model (epoch-0) samples and "
            f"{calibration.get('references', 0)} references. Calibrated = clamp((raw − floor) / (ceiling − "
            "floor), 0, 1): 0 is the base model, 1 is real images of the character.</p>"
            "<table class=\"calibration\"><thead><tr><th>metric</th><th>floor</th><th>ceiling</th>"
            "<th>floor from</th><th>ceiling from</th><th>fallback</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def epochs_table(epochs: dict[int, dict[str, Any]], best_epoch: Any,
                 validation_losses: dict[int, float] | None = None) -> str:
    """One row per epoch: each metric raw → calibrated, the total with its interval, the gates, and the
    trainer's validation loss of that epoch when the run had a validation split (lower is better; it
    is no part of the total)."""
    head = "".join(f"<th>{escape(METRIC_TITLES[m])}<br><small>raw → calibrated</small></th>" for m in METRICS)
    validation_head = "<th>validation loss<br><small>held-out images</small></th>" if validation_losses else ""
    rows = []
    for epoch, data in sorted(epochs.items()):
        css = " class=\"best-row\"" if epoch == best_epoch else ""
        raw = data.get("raw") or {}
        cells = "".join(
            f"<td data-metric=\"{m}\"><span class=\"raw\">{fmt(raw.get(RAW_KEYS[m]))}</span> → "
            f"<span class=\"calibrated\">{fmt((data.get('metrics') or {}).get(m))}</span></td>" for m in METRICS)
        failed = [g["gate"] for g in data.get("gates") or [] if not g.get("passed")]
        gates = "passed" if data.get("gates") and not failed else ("failed: " + ", ".join(failed) if failed else "—")
        validation_cell = (f"<td class=\"validation-loss\">{loss_text(validation_losses.get(int(epoch)))}</td>"
                           if validation_losses else "")
        rows.append(f"<tr{css} data-epoch=\"{epoch}\"><td>{epoch}{' ★' if epoch == best_epoch else ''}</td>{cells}"
                    f"<td class=\"total\">{fmt(data.get('total'))}</td><td class=\"interval\">"
                    f"{interval_text(data.get('interval'))}</td><td class=\"gates\">{escape(gates)}</td>"
                    f"{validation_cell}"
                    f"<td>{len(data.get('images', []))}</td><td>{'yes' if data.get('checkpoint') else 'no'}</td></tr>")
    return ("<table class=\"scores epochs\"><thead><tr><th>epoch</th>" + head + "<th>total</th><th>interval</th>"
            "<th>gates</th>" + validation_head + "<th>samples</th><th>checkpoint</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def gates_table(epochs: dict[int, dict[str, Any]]) -> str:
    """Each gate's verdict per epoch, with the measured value against the threshold."""
    if not any(data.get("gates") for data in epochs.values()):
        return "<p class=\"hint\">No gate verdicts in this scores.json.</p>"
    names = [g for g in GATES if any(v["gate"] == g for d in epochs.values() for v in d.get("gates") or [])]
    head = "".join(f"<th>{escape(name)}</th>" for name in names)
    rows = []
    for epoch, data in sorted(epochs.items()):
        verdicts = {v["gate"]: v for v in data.get("gates") or []}
        cells = []
        for name in names:
            verdict = verdicts.get(name)
            if verdict is None:
                cells.append(f"<td data-gate=\"{name}\">—</td>")
                continue
            word = "pass" if verdict.get("passed") else "FAIL"
            cells.append(f"<td data-gate=\"{name}\" class=\"verdict {word.lower()}\"><b>{word}</b> "
                         f"<small>{escape(str(verdict.get('detail', '')))}</small></td>")
        rows.append(f"<tr data-epoch=\"{epoch}\"><td>{epoch}</td>{''.join(cells)}</tr>")
    return ("<p class=\"hint\">An epoch that fails a gate cannot be chosen while an epoch passing every gate "
            "exists.</p><table class=\"gates\"><thead><tr><th>epoch</th>" + head + "</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def loss_text(value: float | None) -> str:
    """A loss with four significant digits (losses sit near 0.1, where three decimals hide the trend)."""
    return f"{value:.4g}" if value is not None and math.isfinite(value) else "—"


def interval_text(interval: Any) -> str:
    if not interval or None in interval:
        return "—"
    return f"[{fmt(float(interval[0]))}, {fmt(float(interval[1]))}]"


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return escape(str(value))
    return f"{float(value):.3f}" if math.isfinite(value) else "—"
