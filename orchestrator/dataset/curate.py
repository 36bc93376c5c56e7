"""``curate``: frames folder -> manifest.jsonl + summary.json + review.html.

Frames are the files with an image suffix (``IMAGE_SUFFIXES``); every other file in the folder (the
manifest.jsonl and summary.json that extract and crop leave, notes, captions) is no frame: it is listed
under ``ignored`` in the summary, never counted in the funnel. A file with an image suffix that does not
decode is a frame that fails the decode stage.

Stages, each dropping frames with recorded reasons: decode (unusable files) -> quality (exposure,
blur, blank, size) -> dedup (perceptual-hash groups, sharpest kept) -> identity (CLIP score against
the references, rule and threshold from the config). Inputs are only ever read.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.common.atomic import atomic_write_json
from orchestrator.common.errors import UserInputError, require_output_apart
from orchestrator.common.manifest import claim_stage_folder, facts_by_file
from orchestrator.dataset.analysis import AnalysisStore, FrameAnalysis, analyse_frames
from orchestrator.dataset.config import CurationConfig
from orchestrator.dataset.dedup import DedupCandidate, find_near_duplicates
from orchestrator.dataset.quality import quality_problems
from orchestrator.dataset.records import (
    ACCEPTED,
    BORDERLINE,
    MANIFEST_NAME,
    REVIEW_NAME,
    SUMMARY_NAME,
    FrameRecord,
    curation_id,
    funnel_counts,
    funnel_text,
    rejection_histogram,
    write_manifest,
)
from orchestrator.vision import (
    IMAGE_SUFFIXES,
    ClipEncoder,
    EmbeddingCache,
    default_cache_dir,
    embed_files,
    identity_scores,
    list_visible_files,
    load_clip,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CurationResult:
    out_dir: Path
    records: list[FrameRecord]
    summary: dict[str, Any]


def curate(frames_dir: Path, references_dir: Path, out_dir: Path, config: CurationConfig, *,
           device: str = "cpu", cache_dir: Path | None = None, encoder: ClipEncoder | None = None,
           progress: bool = True, overwrite: bool = False) -> CurationResult:
    """Run every stage and write the three result files into ``out_dir`` (atomically)."""
    frames_dir, references_dir, out_dir = frames_dir.resolve(), references_dir.resolve(), out_dir.resolve()
    # Inside the frames folder is allowed: curate skips its own output folder there (selected/ copies).
    require_output_apart(out_dir, key="out", inputs={"frames": frames_dir, "references": references_dir},
                         allow_inside=frozenset({"frames"}))
    claim_stage_folder(out_dir, "curate", source=frames_dir, overwrite=overwrite)
    frame_paths, ignored = _frame_files(frames_dir, out_dir)
    reference_paths = _reference_files(references_dir)
    cache_dir = (cache_dir or default_cache_dir()).resolve()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    if encoder is None:
        encoder = load_clip(config.clip.model, config.clip.weights, device=device)
    timings["load_model"] = time.perf_counter() - started

    with EmbeddingCache(cache_dir) as cache:
        references = embed_files(encoder, reference_paths, cache=cache, batch_size=config.clip.batch_size,
                                 workers=config.clip.workers, progress=progress)
        if len(references) == 0:
            raise UserInputError("none of the reference images can be read: "
                                 + "; ".join(str(e) for e in references.failures.values()), path=references_dir)
        for error in references.failures.values():
            log.warning("reference skipped: %s", error)

        mark = time.perf_counter()
        store = AnalysisStore(cache.cache_dir)
        try:
            analyses = analyse_frames(frame_paths, hash_size=config.dedup.hash_size, hashes=cache, store=store,
                                      workers=config.clip.workers, progress=progress)
        finally:
            store.close()
        timings["analyse"] = time.perf_counter() - mark
        origins = _upstream_facts(frames_dir)
        records = [_record(a, frames_dir, origins) for a in analyses]
        _apply_quality(records, analyses, config)
        _apply_dedup(records, analyses, config)

        mark = time.perf_counter()
        survivors = [r for r in records if r.verdict == ACCEPTED]
        table = embed_files(encoder, [Path(r.path) for r in survivors], cache=cache,
                            batch_size=config.clip.batch_size, workers=config.clip.workers, progress=progress)
        timings["identity"] = time.perf_counter() - mark
    _apply_identity(survivors, table, references.vectors, config)

    counts = funnel_counts(records)
    scores = [r.identity_score for r in records if r.identity_score is not None]
    summary = {
        "stage": "curate", "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "frames_dir": str(frames_dir),
        "references_dir": str(references_dir),
        "counts": counts,
        "funnel": funnel_text(counts),
        "ignored": {"count": len(ignored), "files": [p.relative_to(frames_dir).as_posix() for p in ignored[:50]],
                    "why": "not an image file (by suffix)"},
        "rejections": rejection_histogram(records),
        "references": {
            "used": len(references),
            "skipped": [{"path": str(p), "reason": e.reason, "message": e.detail}
                        for p, e in references.failures.items()],
        },
        "identity": {
            "rule": config.identity.identity_rule().describe(),
            "threshold": config.identity.threshold,
            "borderline_from": round(config.identity.threshold - config.identity.borderline_margin, 6),
            "scores": _score_stats(scores),
        },
        "clip": {"identity": encoder.identity, "device": encoder.device,
                 "embedded": table.computed + references.computed,
                 "reused_from_cache": table.reused + references.reused, "cache_dir": str(cache_dir)},
        "seconds": {k: round(v, 3) for k, v in timings.items()},
        "config": config.to_dict(),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_manifest(out_dir / MANIFEST_NAME, records)
    summary["curation_id"] = curation_id(out_dir / MANIFEST_NAME)
    atomic_write_json(out_dir / SUMMARY_NAME, summary)

    from orchestrator.dataset.review import write_review_page

    write_review_page(out_dir / REVIEW_NAME, records, summary, thumbnail_side=config.review.thumbnail_side,
                      progress=progress)
    return CurationResult(out_dir, records, summary)


def split_image_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """``(image files, other files)`` of ``folder`` (recursive, hidden ones skipped), each sorted: the one
    rule for what counts as a frame or a reference."""
    files = list_visible_files(folder)
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    return images, [p for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]


def _frame_files(frames_dir: Path, out_dir: Path) -> tuple[list[Path], list[Path]]:
    if not frames_dir.is_dir():
        raise UserInputError("frames folder not found", path=frames_dir)
    if out_dir == frames_dir:
        raise UserInputError("the output folder must differ from the frames folder", path=out_dir)
    images, others = split_image_files(frames_dir)
    # An output folder inside the frames folder holds our own copies (selected/): never re-curate them.
    images = [p for p in images if not p.is_relative_to(out_dir)]
    others = [p for p in others if not p.is_relative_to(out_dir)]
    if not images:
        found = f" ({len(others)} other files, e.g. {others[0].name})" if others else ""
        raise UserInputError(f"frames folder has no image files{found}", path=frames_dir,
                             hint=f"frames are {', '.join(sorted(IMAGE_SUFFIXES))} files")
    return images, others


def _reference_files(references_dir: Path) -> list[Path]:
    if not references_dir.is_dir():
        raise UserInputError("reference folder not found", path=references_dir,
                             hint="--references must name a folder of approved images of the character")
    files, _ = split_image_files(references_dir)
    if not files:
        raise UserInputError("reference folder is empty", path=references_dir,
                             hint="put approved images of the character there (the reference workflow used 32)")
    return files


#: What curation keeps of an upstream manifest line (extract's and crop's): enough to show where a frame
#: came from, and the box on its source frame.
ORIGIN_KEYS = ("video", "shot", "frame", "time", "source", "frame_width", "frame_height", "box", "crop_box")


def _upstream_facts(frames_dir: Path) -> dict[str, dict[str, Any]]:
    """``relative path -> origin`` from the frames folder's manifest.jsonl (written by extract or crop)."""
    try:
        facts = facts_by_file(frames_dir)
    except UserInputError as error:  # provenance only: curation goes on without it
        log.warning("frames' manifest ignored: %s", error)
        return {}
    return {name: {k: line[k] for k in ORIGIN_KEYS if k in line} for name, line in facts.items()}


def _record(analysis: FrameAnalysis, frames_dir: Path, origins: dict[str, dict[str, Any]]) -> FrameRecord:
    relative_path = analysis.path.relative_to(frames_dir).as_posix()
    record = FrameRecord(
        path=str(analysis.path),
        relative_path=relative_path,
        sha256=analysis.sha256,
        measures=analysis.measures.to_dict() if analysis.measures else None,
        phash=f"{analysis.phash:016x}" if analysis.phash is not None else None,
        origin=origins.get(relative_path) or None,
    )
    if not analysis.readable:
        record.reject("decode", [{"code": analysis.error_reason, "message": analysis.error_message}])
    return record


def _apply_quality(records: list[FrameRecord], analyses: list[FrameAnalysis], config: CurationConfig) -> None:
    for record, analysis in zip(records, analyses, strict=True):
        if record.verdict == ACCEPTED and analysis.measures is not None:
            problems = quality_problems(analysis.measures, config.quality)
            if problems:
                record.reject("quality", [p.to_dict() for p in problems])


def _apply_dedup(records: list[FrameRecord], analyses: list[FrameAnalysis], config: CurationConfig) -> None:
    candidates = [DedupCandidate(i, a.phash, a.measures.laplacian_variance)
                  for i, (r, a) in enumerate(zip(records, analyses, strict=True))
                  if r.verdict == ACCEPTED and a.phash is not None and a.measures is not None]
    for index, duplicate in find_near_duplicates(candidates, config.dedup.max_hamming_distance).items():
        record, kept = records[index], records[duplicate.kept]
        record.duplicate_of, record.hamming_distance = kept.relative_path, duplicate.distance
        record.reject("dedup", [{
            "code": "near_duplicate", "value": duplicate.distance, "limit": config.dedup.max_hamming_distance,
            "message": f"near-duplicate of {kept.relative_path} (hash distance {duplicate.distance} "
                       f"<= {config.dedup.max_hamming_distance}; that one is sharper)"}])


def _apply_identity(survivors: list[FrameRecord], table: Any, references: np.ndarray,
                    config: CurationConfig) -> None:
    settings = config.identity
    scores = identity_scores(table.vectors, references, settings.identity_rule()) if len(table) else []
    by_path = dict(zip(table.paths, (float(s) for s in scores), strict=True))
    lower = settings.threshold - settings.borderline_margin
    for record in survivors:
        path = Path(record.path)
        if path in table.failures:  # changed or vanished since it was measured
            error = table.failures[path]
            record.reject("decode", [{"code": error.reason, "message": error.detail}])
            continue
        score = round(by_path[path], 6)
        record.identity_score = score
        if score >= settings.threshold:
            continue
        message = f"identity score {score:.3f} < threshold {settings.threshold:g}"
        reason = {"code": "below_threshold", "value": score, "limit": settings.threshold, "message": message}
        record.reject("identity", [reason], verdict=BORDERLINE if score >= lower else "rejected")


def _score_stats(scores: list[float]) -> dict[str, float] | None:
    if not scores:
        return None
    values = np.asarray(scores)
    return {"min": round(float(values.min()), 4), "median": round(float(np.median(values)), 4),
            "max": round(float(values.max()), 4)}
