"""review.html: a contact sheet of accepted and borderline frames for a person's final look.

Self-contained (thumbnails are small JPEG data URIs), sorted by identity score, each card with its
scores and reasons. A crop (from ``lora-pipeline crop``) also shows its source frame with the character's
box and the crop box drawn over it: an SVG overlay in the frame's own pixel coordinates, from the crop
manifest's numbers, so the thumbnail is the frame as it is and the box is exactly the manifest's. Clicking a card toggles keep/reject; "Export decisions" downloads
``decisions.json`` (and shows it in a text box, for browsers that block downloads from file://),
which ``lora-pipeline curate apply OUT_DIR --decisions decisions.json`` turns into the final set.
"""

from __future__ import annotations

import base64
import html
import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_write_text
from orchestrator.common.progress import track
from orchestrator.dataset.records import ACCEPTED, BORDERLINE, FrameRecord
from orchestrator.vision import ImageDecodeError, open_image_rgb

DECISIONS_FORMAT = "lora-pipeline/curation-decisions"
DECISIONS_VERSION = 2  # 2: carries the curation_id of the run whose page made it

_STYLE = """
body{font:14px system-ui,sans-serif;margin:0;background:#1d1f21;color:#ddd}
header{position:sticky;top:0;background:#26292c;padding:10px 16px;border-bottom:1px solid #444;z-index:1}
header h1{font-size:17px;margin:0 0 4px} header p{margin:2px 0;color:#aaa}
button{font:inherit;padding:5px 12px;margin-right:6px;cursor:pointer}
#grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:10px;padding:12px}
.card{background:#2b2e31;border:3px solid #3b8f3b;border-radius:6px;padding:6px;cursor:pointer;user-select:none}
.card.reject{border-color:#a33;opacity:.45}
.card img{width:100%;height:150px;object-fit:contain;background:#000;display:block}
.card .score{font-weight:600;font-size:15px} .card .meta,.card .why{color:#aaa;font-size:12px;word-break:break-all}
.badge{float:right;font-size:11px;padding:1px 6px;border-radius:8px;background:#3b8f3b;color:#fff}
.borderline .badge{background:#b8860b}
textarea{width:100%;height:70px;display:none;margin-top:6px}
.card.hidden{display:none}
.origin{position:relative;width:100%;margin-top:4px;background:#000}
.card .origin img{position:absolute;inset:0;width:100%;height:100%;object-fit:fill}
.origin svg{position:absolute;inset:0;width:100%;height:100%;pointer-events:none;overflow:visible}
.origin rect{fill:none;vector-effect:non-scaling-stroke}
.origin .character-box{stroke:#ffd400;stroke-width:2} .origin .crop-box{stroke:#3cf;stroke-width:1.5;stroke-dasharray:4 3}
"""

_SCRIPT = """
const cards = Array.from(document.querySelectorAll('.card'));
const counter = document.getElementById('kept-count');
const filter = document.getElementById('filter');
function refresh() {
  counter.textContent = cards.filter(c => !c.classList.contains('reject')).length;
  document.getElementById('rescued-count').textContent =
    cards.filter(c => c.dataset.default === 'reject' && !c.classList.contains('reject')).length;
  cards.forEach(c => {
    const kept = !c.classList.contains('reject');
    const show = filter.value === 'all' || (filter.value === 'keep' && kept) ||
      (filter.value === 'reject' && !kept) || (filter.value === 'borderline' && c.classList.contains('borderline'));
    c.classList.toggle('hidden', !show);
  });
}
filter.addEventListener('change', refresh);
function toggle(card) {
  card.classList.toggle('reject');
  card.querySelector('.state').textContent = card.classList.contains('reject') ? 'reject' : 'keep';
  refresh();
}
cards.forEach(card => card.addEventListener('click', () => toggle(card)));
function decisions() {
  const result = {};
  cards.forEach(c => { result[c.dataset.id] = c.classList.contains('reject') ? 'reject' : 'keep'; });
  return {format: FORMAT, version: VERSION, curation_id: CURATION_ID, frames_dir: FRAMES_DIR, decisions: result};
}
function exportDecisions() {
  const text = JSON.stringify(decisions(), null, 1);
  const box = document.getElementById('decisions-output');
  box.value = text; box.style.display = 'block';
  const link = document.createElement('a');
  link.href = URL.createObjectURL(new Blob([text], {type: 'application/json'}));
  link.download = 'decisions.json';
  document.body.appendChild(link); link.click(); link.remove();
}
document.getElementById('export').addEventListener('click', exportDecisions);
document.getElementById('reset').addEventListener('click', () => {
  cards.forEach(c => { if (c.classList.contains('reject') !== (c.dataset.default === 'reject')) toggle(c); });
});
refresh();
"""


def review_candidates(records: list[FrameRecord]) -> list[FrameRecord]:
    """Accepted and borderline frames, highest identity score first."""
    shown = [r for r in records if r.verdict in (ACCEPTED, BORDERLINE)]
    return sorted(shown, key=lambda r: (-(r.identity_score or 0.0), r.relative_path))


def write_review_page(path: Path, records: list[FrameRecord], summary: dict[str, Any], *,
                      thumbnail_side: int = 192, workers: int = 2, progress: bool = True) -> Path:
    shown = review_candidates(records)

    def thumbnails(record: FrameRecord) -> tuple[str, str]:
        source = _box_origin(record)
        frame = thumbnail_data_uri(Path(source["source"]), thumbnail_side) if source else ""
        return thumbnail_data_uri(Path(record.path), thumbnail_side), frame

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="thumbs") as pool:
        thumbs = pool.map(thumbnails, shown)
        if progress and shown:
            thumbs = track(thumbs, total=len(shown), description="review thumbnails", unit="img")
        cards = [_card(record, *pair) for record, pair in zip(shown, thumbs, strict=True)]
    counts = summary["counts"]
    identity = summary["identity"]
    script = (f"const FORMAT = {json.dumps(DECISIONS_FORMAT)}; const VERSION = {DECISIONS_VERSION};\n"
              f"const FRAMES_DIR = {_js_string(summary['frames_dir'])};\n"
              f"const CURATION_ID = {_js_string(summary.get('curation_id', ''))};\n{_SCRIPT}")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Curation review ({len(shown)} frames)</title>
<style>{_STYLE}</style></head><body>
<header><h1>Curation review: keeping <span id="kept-count">0</span> of {len(shown)}
(<span id="rescued-count">0</span> borderline rescued)</h1>
<p>{html.escape(summary['funnel'])}; {counts['borderline']} borderline (unticked).
Identity: {html.escape(identity['rule'])}, threshold {identity['threshold']:g}.</p>
<p>Click a frame to toggle keep / reject, then export and run
<code>lora-pipeline curate apply {html.escape(str(path.parent))} --decisions decisions.json</code>.</p>
<button id="export">Export decisions</button><button id="reset">Reset</button>
<label>Show <select id="filter"><option value="all">all</option><option value="keep">kept</option>
<option value="reject">rejected</option><option value="borderline">borderline</option></select></label>
<textarea id="decisions-output" readonly></textarea></header>
<main id="grid">
{''.join(cards)}
</main>
<script>{script}</script></body></html>
"""
    return atomic_write_text(path, page)


def thumbnail_data_uri(path: Path, side: int) -> str:
    try:
        image = open_image_rgb(path)
    except ImageDecodeError:
        return ""
    image.thumbnail((side, side))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=78)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _box_origin(record: FrameRecord) -> dict[str, Any] | None:
    """The record's origin when it holds a box on a source frame of known size (a crop), else None."""
    origin = record.origin or {}
    if not all(key in origin for key in ("source", "box", "frame_width", "frame_height")):
        return None
    return origin


def _rect(css_class: str, box: list[float]) -> str:
    x0, y0, x1, y1 = (float(v) for v in box)
    return (f'<rect class="{css_class}" x="{x0:g}" y="{y0:g}" width="{x1 - x0:g}" height="{y1 - y0:g}" '
            f'data-box="{x0:g},{y0:g},{x1:g},{y1:g}"></rect>')


def _origin_figure(record: FrameRecord, frame_thumb: str) -> str:
    """The source frame with the character's box (solid) and the crop box (dashed) drawn over it."""
    origin = _box_origin(record)
    if origin is None or not frame_thumb:
        return ""
    width, height = int(origin["frame_width"]), int(origin["frame_height"])
    rects = _rect("character-box", origin["box"])
    if origin.get("crop_box"):
        rects = _rect("crop-box", origin["crop_box"]) + rects
    where = " · ".join(str(origin[k]) for k in ("time",) if k in origin)
    title = f"source frame {origin['source']}" + (f" at {where}" if where else "")
    return (f'<div class="origin" style="aspect-ratio:{width}/{height}" title="{html.escape(title)}" '
            f'data-frame-size="{width},{height}"><img alt="source frame" loading="lazy" src="{frame_thumb}">'
            f'<svg viewBox="0 0 {width} {height}" preserveAspectRatio="none">{rects}</svg></div>')


def _card(record: FrameRecord, thumb: str, frame_thumb: str = "") -> str:
    default = "keep" if record.verdict == ACCEPTED else "reject"
    measures = record.measures or {}
    meta = (f"{measures.get('width')}x{measures.get('height')} · sharpness {measures.get('laplacian_variance', 0):.0f}"
            f" · luminance {measures.get('mean_luminance', 0):.2f}")
    origin = record.origin or {}
    if "shot" in origin:
        meta += f" · shot {origin['shot']}" + (f" at {origin['time']}" if "time" in origin else "")
    why = "; ".join(reason["message"] for reason in record.reasons)
    score = f"{record.identity_score:.3f}" if record.identity_score is not None else "n/a"
    classes = "card" + (" borderline" if record.verdict == BORDERLINE else "") + (" reject" if default == "reject" else "")
    return (f'<div class="{classes}" data-id="{html.escape(record.relative_path)}" data-default="{default}" '
            f'title="{html.escape(record.path)}"><img alt="" loading="lazy" src="{thumb}">{_origin_figure(record, frame_thumb)}'
            f'<span class="badge">{record.verdict}</span><div class="score">identity {score} · '
            f'<span class="state">{default}</span></div><div class="meta">{html.escape(record.relative_path)}<br>'
            f'{html.escape(meta)}</div><div class="why">{html.escape(why)}</div></div>\n')


def _js_string(value: str) -> str:
    # json.dumps gives a valid JS string literal; "</" is escaped so it cannot close the script tag.
    return json.dumps(value).replace("</", "<\\/")
