"""``lora-pipeline status DIR``: where a project stands, on one screen and as ``DIR/status.html``.

Everything is read from what ``run`` recorded (``.project/stages/*.json``) and what the stages wrote;
nothing is computed again, so it answers at once even during a week-long search. The page is
self-contained (thumbnails inlined), so it can be copied off a server and opened anywhere.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_write_text
from orchestrator.common.file_lock import FileLock, LockBusy
from orchestrator.project.context import CURATION, SEARCH, SELECTED, TRAINING, RunContext, project_paths
from orchestrator.project.records import DONE, FAILED, RUN_LOCK, RUNNING, WAITING, read_record, state_dir
from orchestrator.project.schema import load_project
from orchestrator.project.stages import STAGES

STATUS_PAGE = "status.html"
NOT_YET, INTERRUPTED = "not yet", "interrupted"
THUMBNAILS, SAMPLES, THUMB_PX = 24, 6, 96
# The counts as they flow, each from the stage that knows it: (label, stage, fact).
FLOW = (("films", "extract", "films"), ("shots", "extract", "shots"), ("frames", "extract", "frames"),
        ("crops", "crop", "crops"), ("kept", "review", "kept"), ("captioned", "caption", "captioned"))


@dataclass
class StageState:
    name: str
    state: str  # done | running | interrupted | waiting for you | failed | not yet
    detail: str = ""
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProjectStatus:
    folder: Path
    stages: list[StageState]
    flow: list[tuple[str, Any]]
    training: dict[str, Any]
    next_step: str


def _run_active(folder: Path) -> bool:
    lock = FileLock(state_dir(folder) / RUN_LOCK, wait=0.0)
    try:
        lock.acquire()
    except LockBusy:
        return True
    lock.release()
    return False


def _progress(folder: Path, name: str) -> dict[str, Any]:
    """The search's trials and GPU-hours, or the training's epochs, as their own files say now."""
    results = folder / SEARCH / "trial_results.json"
    if results.is_file():
        try:
            trials = json.loads(results.read_text(encoding="utf-8")).get("trials") or []
        except (OSError, ValueError):
            return {}
        scored = [t for t in trials if isinstance(t.get("value"), (int, float))]
        best = max(scored, key=lambda t: t["value"], default=None)
        return {"runs": len(trials), "gpu_hours": round(sum(t.get("gpu_seconds") or 0 for t in trials) / 3600, 2),
                "best_so_far": f"trial {best['number']}: {best['value']:.4f} ({best.get('checkpoint')})" if best
                else None}
    record = folder / TRAINING / name / "run.json"
    if record.is_file():
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {"training": data.get("status"), "epochs_done": len(data.get("epochs") or [])}
    return {}


def project_status(folder: str | Path) -> ProjectStatus:
    from orchestrator.config.paths import load_paths

    project = load_project(folder)
    active = _run_active(project.folder)
    context = RunContext(project=project, paths=project_paths(project, load_paths()))
    stages: list[StageState] = []
    for stage in STAGES:
        record = read_record(project.folder, stage.name)
        if record is None:
            stages.append(StageState(stage.name, NOT_YET))
        elif record.status == DONE and not stage.folder(context).exists():
            stages.append(StageState(stage.name, NOT_YET, f"{stage.folder(context)} was deleted: the next run redoes it"))
        elif record.status == RUNNING:
            stages.append(StageState(stage.name, RUNNING if active else INTERRUPTED,
                                     f"since {record.started_at}" if active else "run again to continue",
                                     record.facts))
        elif record.status == WAITING:
            stages.append(StageState(stage.name, "waiting for you", record.error or "", record.facts))
        elif record.status == FAILED:
            stages.append(StageState(stage.name, FAILED, record.error or "", record.facts))
        else:
            stages.append(StageState(stage.name, DONE, f"{record.seconds:.0f} s, {record.finished_at}", record.facts))
    facts = {s.name: s.facts for s in stages}
    flow = [(label, facts.get(stage, {}).get(key)) for label, stage, key in FLOW]
    training = {**facts.get("train", {}), **facts.get("evaluate", {}),
                **_progress(project.folder, str(project.get("project", "name")))}
    return ProjectStatus(project.folder, stages, flow, training, _next(project.folder, stages, active))


def _next(folder: Path, stages: list[StageState], active: bool) -> str:
    for stage in stages:
        if stage.state == "waiting for you":
            return stage.detail
        if stage.state == FAILED:
            return f"fix the cause above ({stage.name}), then `lora-pipeline run {folder}`"
        if stage.state in (NOT_YET, INTERRUPTED):
            return "a run is working; wait, or watch it here" if active else f"`lora-pipeline run {folder}`"
        if stage.state == RUNNING:
            return "a run is working; wait, or watch it here"
    page = stages[-1].facts.get("votes_page")
    if page:
        return (f"open {page}, vote blind, then `{stages[-1].facts.get('apply_command')}` (the best LoRA so far: "
                f"{stages[-2].facts.get('best_checkpoint')})")
    return f"done: the best LoRA is {stages[-2].facts.get('best_checkpoint')}"


def next_step(folder: str | Path) -> str:
    return project_status(folder).next_step


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "?" if value is None else str(value)


def training_line(status: ProjectStatus) -> str:
    t = status.training
    return "; ".join(f"{k.replace('_', ' ')}: {t[k]}" for k in (
        "training", "epochs_done", "runs", "gpu_hours", "best_so_far", "best_trial", "best_epoch", "best_score",
        "best_checkpoint") if t.get(k) is not None)


def status_lines(status: ProjectStatus) -> list[str]:
    lines = [f"project {status.folder}"]
    lines += [f"  {s.name:<9} {s.state:<16} {s.detail}".rstrip() for s in status.stages]
    lines.append("  " + " -> ".join(f"{_number(value)} {label}" for label, value in status.flow))
    if status.training:
        lines.append(f"  training: {training_line(status)}")
    lines.append(f"next: {status.next_step}")
    return lines


def print_status(status: ProjectStatus) -> None:
    print("\n".join(status_lines(status)))


def _thumbnail(path: Path) -> str:
    from PIL import Image

    with Image.open(path) as image:
        image.thumbnail((THUMB_PX, THUMB_PX))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
    return f'<img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}" alt="{html.escape(path.name)}">'


def _images(folder: Path, limit: int) -> list[Path]:
    from orchestrator.vision import list_image_files

    return list_image_files(folder)[:limit] if folder.is_dir() else []


def _curve(scores: dict[str, float]) -> str:
    """Score by epoch as an inline SVG polyline."""
    points = sorted((int(epoch), float(value)) for epoch, value in scores.items())
    if len(points) < 2:
        return ""
    low, high = min(v for _, v in points), max(v for _, v in points)
    span, last = (high - low) or 1.0, points[-1][0] or 1
    xy = " ".join(f"{20 + 260 * e / last:.1f},{110 - 90 * (v - low) / span:.1f}" for e, v in points)
    return (f'<svg class="curve" width="300" height="120" viewBox="0 0 300 120"><polyline points="{xy}" '
            f'fill="none" stroke="#2a6" stroke-width="2"/></svg>')


def write_status_page(status: ProjectStatus) -> Path:
    rows = "".join(f'<tr class="{html.escape(s.state.replace(" ", "-"))}"><td>{s.name}</td><td>{html.escape(s.state)}'
                   f"</td><td>{html.escape(s.detail)}</td></tr>" for s in status.stages)
    flow = " &rarr; ".join(f"{_number(v)} {label}" for label, v in status.flow)
    kept = "".join(_thumbnail(p) for p in _images(status.folder / CURATION / SELECTED, THUMBNAILS))
    checkpoint = status.training.get("best_checkpoint")
    samples_dir = Path(status.training["run_dir"]) / "sample" if status.training.get("run_dir") else None
    samples = "".join(_thumbnail(p) for p in _images(samples_dir, SAMPLES)) if samples_dir else ""
    curve = _curve(status.training.get("scores") or {})
    body = f"""<h1>Project {html.escape(status.folder.name)}</h1>
<table id="stages"><tr><th>stage</th><th>state</th><th></th></tr>{rows}</table>
<p id="flow">{flow}</p>
<p id="best">best checkpoint: {html.escape(str(checkpoint))}</p>
<p id="progress">{html.escape(training_line(status))}</p>
<h2>Kept crops</h2><div id="kept">{kept}</div>
<h2>Best run's samples</h2><div id="samples">{samples}</div>
<h2>Scores</h2><div id="scores">{curve}</div>
<p id="next">next: {html.escape(status.next_step)}</p>
<script type="application/json" id="status-data">{html.escape(json.dumps([s.__dict__ for s in status.stages], default=str))}</script>"""
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>lora-pipeline status</title><style>"
            "body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:left}.failed{color:#b00}"
            ".done{color:#060}.waiting-for-you{color:#a60}img{margin:2px;border:1px solid #ccc}</style></head>"
            f"<body>{body}</body></html>")
    return atomic_write_text(status.folder / STATUS_PAGE, page)


__all__ = ["ProjectStatus", "next_step", "print_status", "project_status", "write_status_page"]
