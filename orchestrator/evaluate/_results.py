"""``RUN_DIR/evaluation/scores.json`` and ``best.json``: written atomically, read back for merging,
the report and ``compare``.

scores.json (schema 2)::

    {"schema": 2, "run_dir": ..., "evaluated_at": ISO time, "encoder": model identity,
     "config": {"source", "weights", "rules": {metric: rule text}, "settings": {...}},
     "calibration": {"base_samples", "references", "metrics": {metric: {"floor", "ceiling",
                     "floor_source", "ceiling_source", "fallback"}}},
     "references": {"folder"}, "prompts": {"<index>": text}, "problems": [...], "fatal": [...],
     "epochs": {"<epoch>": {"epoch", "total", "interval": [low, high] | null,
                            "metrics": {calibrated...}, "raw": {...}, "gates": [{"gate", "passed", "detail"}],
                            "checkpoint", "warnings": [...], "images": [{per-image details}, ...]}}}

Schema 1 (before calibration; "pose_variety" instead of "character_variety") is still read by the
report and ``compare``, but never merged into a new evaluation (its numbers mean something else).

best.json::

    {"epoch", "checkpoint", "total", "interval", "reason", "runner_up": {"epoch", "total"} | null,
     "leader", "within_noise": [...], "clean", "excluded": {"<epoch>": [gates]},
     "metrics": {...}, "weights": {...}, "eligible_epochs": [...]}   ("epoch": null when none scored)
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.common.atomic import atomic_write_json
from orchestrator.common.errors import UserInputError
from orchestrator.common.record_paths import on_disk
from orchestrator.evaluate._gates import GateVerdict
from orchestrator.evaluate._metrics import EpochScore, ImageScore, rule_descriptions

if TYPE_CHECKING:
    from orchestrator.evaluate._evaluation_result import EvaluationResult

SCHEMA = 2
READABLE_SCHEMAS = (1, 2)
EVALUATION_FOLDER = "evaluation"


def scores_path(run_dir: Path) -> Path:
    return Path(run_dir) / EVALUATION_FOLDER / "scores.json"


def best_path(run_dir: Path) -> Path:
    return Path(run_dir) / EVALUATION_FOLDER / "best.json"


def epoch_to_dict(score: EpochScore) -> dict[str, Any]:
    return {
        "epoch": score.epoch,
        "total": _finite(score.total),
        "interval": [_finite(v) for v in score.interval] if score.interval else None,
        "gates": [verdict.to_dict() for verdict in score.gates],
        "metrics": {k: _finite(v) for k, v in score.metrics.items()},
        "raw": {k: _finite(v) for k, v in score.raw.items()},
        "checkpoint": score.checkpoint,
        "warnings": list(score.warnings),
        "images": [_clean(asdict(image)) for image in score.images],
    }


def epoch_from_dict(data: dict[str, Any]) -> EpochScore:
    images = [ImageScore(**image) for image in data.get("images", [])]
    interval = data.get("interval")
    return EpochScore(epoch=int(data["epoch"]), metrics=dict(data.get("metrics", {})), raw=dict(data.get("raw", {})),
                      total=data.get("total"), images=images, warnings=list(data.get("warnings", [])),
                      checkpoint=data.get("checkpoint"),
                      interval=(float(interval[0]), float(interval[1])) if interval and None not in interval else None,
                      gates=[GateVerdict(str(g["gate"]), bool(g["passed"]), str(g.get("detail", "")))
                             for g in data.get("gates", [])])


def read_scores_file(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") in READABLE_SCHEMAS else None


def read_scores(run_dir: Path, encoder_identity: str) -> dict[int, EpochScore]:
    """Epoch scores already written for this run by the same encoder and schema (others are not comparable).

    A ``scores.json`` that is there but is not a JSON object (truncated, hand-edited) is refused: the
    epochs it holds would be silently dropped by the merge, which promises to keep them."""
    path = scores_path(run_dir)
    if path.exists():
        try:
            whole = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as error:
            raise UserInputError(f"cannot keep its other epochs: unreadable ({error})", path=path,
                                 hint="fix or move it, or evaluate every epoch (no --epoch)") from None
        if not isinstance(whole, dict):
            raise UserInputError(f"cannot keep its other epochs: a JSON {type(whole).__name__}, not scores",
                                 path=path, hint="fix or move it, or evaluate every epoch (no --epoch)")
    data = read_scores_file(path)
    if data is None or data.get("schema") != SCHEMA or data.get("encoder") != encoder_identity:
        return {}
    scores = {}
    recorded_dir = data.get("run_dir") if isinstance(data.get("run_dir"), str) else None
    for value in (data.get("epochs") or {}).values():
        try:
            score = epoch_from_dict(value)
        except (KeyError, TypeError, ValueError):
            continue
        if isinstance(score.checkpoint, str) and score.checkpoint:
            # A kept epoch's checkpoint is this folder's file now (a copied run's scores name the original),
            # and only when it is on disk: the record is not trusted over the disk.
            here = on_disk(score.checkpoint, folder=Path(run_dir), recorded_folder=recorded_dir)
            score.checkpoint = str(here) if here is not None and here.is_file() else None
        scores[score.epoch] = score
    return scores


def write_results(result: EvaluationResult, *, references: Path) -> tuple[Path, Path]:
    config = result.config
    document = {
        "schema": SCHEMA,
        "run_dir": str(result.run_dir),
        "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "encoder": result.encoder_identity,
        "config": {"source": config.source, "weights": config.weights,
                   "rules": rule_descriptions(config, result.calibration), "settings": config.raw},
        "calibration": result.calibration.to_dict() if result.calibration else None,
        "references": {"folder": str(references)},
        "prompts": {str(p.index): p.text for p in (result.facts.prompts if result.facts else [])},
        "problems": result.problems,
        "fatal": result.fatal,
        "epochs": {str(epoch): epoch_to_dict(score) for epoch, score in result.epochs.items()},
    }
    scores_file = atomic_write_json(scores_path(result.run_dir), document)
    best = result.best
    if best is None:
        best_document: dict[str, Any] = {"epoch": None, "checkpoint": None, "total": None,
                                         "reason": "; ".join(result.fatal) or "no epoch could be scored",
                                         "runner_up": None, "weights": config.weights}
    else:
        chosen = result.epochs[best.epoch]
        best_document = {
            "epoch": best.epoch,
            "checkpoint": best.checkpoint,
            "total": best.total,
            "interval": list(chosen.interval) if chosen.interval else None,
            "reason": best.reason,
            "leader": best.leader,
            "within_noise": list(best.within_noise),
            "clean": best.clean,
            "excluded": {str(epoch): list(gates) for epoch, gates in sorted(best.excluded.items())},
            "runner_up": {"epoch": best.runner_up, "total": best.runner_up_total} if best.runner_up is not None
            else None,
            "metrics": {k: _finite(v) for k, v in chosen.metrics.items()},
            "weights": config.weights,
            "eligible_epochs": list(best.eligible),
            "warnings": chosen.warnings,
        }
    best_file = atomic_write_json(best_path(result.run_dir), best_document)
    return scores_file, best_file


def _finite(value: float | None) -> float | None:
    # JSON has no NaN: a non-finite number is written as null (and means "not scored").
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return float(value)


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    return {k: (_finite(v) if isinstance(v, float) else v) for k, v in data.items()}
