"""``crop``: film frames -> crops of the character (optionally with its mask as alpha), one manifest line per frame.

Per batch of frames: the detector proposes boxes for the profile's words; each box is cut out and
embedded, and **identity decides**: a box passes when its similarity to the references (the curation
identity rule) reaches ``identity_threshold``. No box passes: the frame is dropped, "character not
found". Several pass: the frame is kept once, with the best. The kept box becomes a crop with a margin,
a bucket shape and a minimum size (:func:`plan_crop`); with a segmenter, the character's mask (SAM
prompted by the box) becomes the crop's alpha channel, which the trainer reads as the loss mask
(``dataset prepare`` copies it as it is; the render turns masked loss on: ``kohya/dataset_files.py``).

``OUT/manifest.jsonl``: one line per input frame (file, source, its size, box, crop box, scores,
candidates, verdict, reason); boxes are pixels of the source frame. ``OUT/summary.json``: counts and
settings. Inputs are only read.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from orchestrator.common.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from orchestrator.common.errors import UserInputError, require_output_apart
from orchestrator.common.manifest import MANIFEST_NAME, claim_stage_folder, facts_by_file
from orchestrator.common.numbers import number_problem
from orchestrator.crop._geometry import Box, plan_crop
from orchestrator.crop._models import Detection, Detector, Segmenter
from orchestrator.vision import (
    IdentityRule,
    ImageDecodeError,
    identity_scores,
    list_image_files,
    open_image_rgb,
)

SUMMARY_NAME = "summary.json"
#: Words used when no character profile is given.
GENERIC_QUERIES: tuple[str, ...] = ("an animated character", "a person")
NOT_FOUND = "character not found"
NO_BOX = "no candidate box"
TOO_SMALL = "frame smaller than the minimum crop"
UNREADABLE = "unreadable frame"

Embed = Callable[[list[Image.Image]], np.ndarray]


@dataclass(frozen=True)
class CropConfig:
    queries: tuple[str, ...] = GENERIC_QUERIES
    identity_threshold: float = 0.75
    identity_rule: IdentityRule = field(default_factory=IdentityRule)
    max_candidates: int = 5  # the detector's best boxes per frame that identity looks at
    min_box_fraction: float = 0.05  # a box's short side, as a fraction of the frame's short side
    identity_margin: float = 0.05  # context around a box when it is embedded
    margin: float = 0.15  # context around the kept box in the crop
    min_side: int = 256
    mask_dilation: float = 0.015  # of the crop's short side: the outline belongs to the character
    batch_size: int = 8

    def __post_init__(self) -> None:
        if not self.queries or not all(isinstance(q, str) and q.strip() for q in self.queries):
            raise ValueError(f"the detector needs at least one query, and no empty one (got {list(self.queries)!r})")
        if self.min_side < 32 or self.batch_size < 1 or self.max_candidates < 1:
            raise ValueError("min_side >= 32, batch_size >= 1 and max_candidates >= 1 are required")
        for name, low, high in (("identity_threshold", -1, 1), ("margin", 0, None), ("identity_margin", 0, None),
                                ("min_box_fraction", 0, 1), ("mask_dilation", 0, 1)):
            problem = number_problem(getattr(self, name), low=low, high=high)
            if problem is not None:
                raise ValueError(f"{name} {problem}")


@dataclass
class CropResult:
    out_dir: Path
    records: list[dict[str, Any]]
    summary: dict[str, Any]

    @property
    def kept(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["verdict"] == "kept"]


def profile_queries(profile: Any) -> tuple[str, ...]:
    """Detector words from a :class:`CharacterProfile`: the generic words, then its description phrases."""
    return (*GENERIC_QUERIES, *tuple(profile.description)[:3])


def _frame_list(frames_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The frames and what an upstream stage said about them (extract's manifest lines), in manifest order."""
    if not frames_dir.is_dir():
        raise UserInputError("frames folder not found", path=frames_dir)
    facts = facts_by_file(frames_dir)
    files = list_image_files(frames_dir, recursive=False)
    if not files:
        raise UserInputError("frames folder has no images", path=frames_dir)
    return [(path, facts.get(path.name, {})) for path in files]


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def crop_frames(frames_dir: str | Path, references_dir: str | Path, out_dir: str | Path, *, detector: Detector,
                embed: Embed, segmenter: Segmenter | None = None, config: CropConfig | None = None,
                progress: bool = True, overwrite: bool = False) -> CropResult:
    """Crop the character out of every frame of ``frames_dir`` into ``out_dir`` (see the module doc)."""
    from orchestrator.common.progress import track

    config = config or CropConfig()
    frames_dir, out_dir = Path(frames_dir).resolve(), Path(out_dir).resolve()
    require_output_apart(out_dir, key="out", inputs={"frames": frames_dir, "references": references_dir})
    claim_stage_folder(out_dir, "crop", source=frames_dir, overwrite=overwrite)
    frames = _frame_list(frames_dir)
    references = _reference_vectors(Path(references_dir), embed)
    out_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    batches = list(_batches(frames, config.batch_size))
    iterator = track(batches, total=len(batches), description="crop", unit="batch") if progress else batches
    for batch in iterator:
        records.extend(_crop_batch(batch, references, out_dir, detector, embed, segmenter, config))
    counts = Counter(r["reason"] if r["verdict"] == "dropped" else "kept" for r in records)
    kept = counts.pop("kept", 0)
    summary = {
        "stage": "crop", "summary": f"{len(records):,} frames → {kept:,} crops",
        "frames": len(records), "crops": kept, "dropped": dict(sorted(counts.items())),
        "masks": sum(1 for r in records if r.get("mask")),
        "frames_dir": str(frames_dir), "references_dir": str(Path(references_dir).resolve()),
        "detector": getattr(detector, "identity", type(detector).__name__),
        "segmenter": getattr(segmenter, "identity", type(segmenter).__name__) if segmenter else None,
        "identity": {"rule": config.identity_rule.describe(), "threshold": config.identity_threshold},
        "config": {**asdict(config), "identity_rule": asdict(config.identity_rule)},
    }
    lines = [json.dumps(r, ensure_ascii=False, allow_nan=False) for r in records]
    atomic_write_text(out_dir / MANIFEST_NAME, "".join(f"{line}\n" for line in lines))
    atomic_write_json(out_dir / SUMMARY_NAME, summary)
    return CropResult(out_dir=out_dir, records=records, summary=summary)


def _reference_vectors(references_dir: Path, embed: Embed) -> np.ndarray:
    if not references_dir.is_dir():
        raise UserInputError("reference folder not found", path=references_dir)
    images = []
    for path in list_image_files(references_dir):
        try:
            images.append(open_image_rgb(path))
        except ImageDecodeError:
            continue
    if not images:
        raise UserInputError("no readable reference image", path=references_dir,
                             hint="put approved images of the character there")
    return embed(images)


def _candidates(detections: list[Detection], image: Image.Image, config: CropConfig) -> list[Detection]:
    short = min(image.size) * config.min_box_fraction
    usable = [d for d in detections if d.box.width >= short and d.box.height >= short]
    return usable[:config.max_candidates]


def score_candidates(images: list[Image.Image], references: np.ndarray, *, detector: Detector, embed: Embed,
                     config: CropConfig) -> list[tuple[list[Detection], list[float]]]:
    """Detector, then identity, for one batch: per image, its candidate boxes and each box's identity score
    (similarity of the box, with ``identity_margin`` of context, to the references). Every box of the
    batch is embedded in one call."""
    detections = detector.detect(images, list(config.queries))
    per_frame = [_candidates(found, image, config) for found, image in zip(detections, images, strict=True)]
    pieces = [image.crop(d.box.grown(config.identity_margin).clipped(*image.size).as_ints())
              for candidates, image in zip(per_frame, images, strict=True) for d in candidates]
    scores = identity_scores(embed(pieces), references, config.identity_rule) if pieces else np.zeros(0)
    result, position = [], 0
    for candidates in per_frame:
        result.append((candidates, [float(s) for s in scores[position:position + len(candidates)]]))
        position += len(candidates)
    return result


def _crop_batch(batch: list[tuple[Path, dict[str, Any]]], references: np.ndarray, out_dir: Path,
                detector: Detector, embed: Embed, segmenter: Segmenter | None,
                config: CropConfig) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    opened: list[tuple[dict[str, Any], Image.Image]] = []
    for path, facts in batch:
        record: dict[str, Any] = {"frame": path.name, "source": str(path), "file": None, "verdict": "dropped",
                                  **{k: facts[k] for k in ("video", "shot", "time") if k in facts}}
        records.append(record)
        try:
            opened.append((record, open_image_rgb(path)))
        except ImageDecodeError as error:
            record["reason"] = f"{UNREADABLE}: {error}"
    scored = score_candidates([image for _, image in opened], references, detector=detector, embed=embed,
                              config=config)
    for (candidates, frame_scores), (record, image) in zip(scored, opened, strict=True):
        record.update(frame_width=image.width, frame_height=image.height)  # the boxes' frame of reference
        _decide(record, image, candidates, frame_scores, out_dir, segmenter, config)
    return records


def _decide(record: dict[str, Any], image: Image.Image, candidates: list[Detection], scores: list[float],
            out_dir: Path, segmenter: Segmenter | None, config: CropConfig) -> None:
    threshold = config.identity_threshold
    record["candidates"] = [{"box": d.box.as_list(), "detector_score": round(d.score, 4), "query": d.query,
                             "identity": round(s, 4), "passed": s >= threshold}
                            for d, s in zip(candidates, scores, strict=True)]
    if not candidates:
        record["reason"] = NO_BOX
        return
    passed = sorted(((s, d) for d, s in zip(candidates, scores, strict=True) if s >= threshold),
                    key=lambda pair: (-pair[0], -pair[1].score))
    if not passed:
        record["reason"] = f"{NOT_FOUND} (best identity {max(scores):.3f} < {threshold:g})"
        return
    score, best = passed[0]
    crop_box = plan_crop(best.box, image.width, image.height, margin=config.margin, min_side=config.min_side)
    record.update(box=best.box.as_list(), detector_score=round(best.score, 4), identity=round(score, 4),
                  query=best.query)
    if crop_box is None:
        record["reason"] = f"{TOO_SMALL} ({image.width}x{image.height} < {config.min_side} px)"
        return
    crop = image.crop(crop_box.as_ints())
    mask_facts = None
    if segmenter is not None:
        alpha, mask_facts = _alpha(segmenter, image, best.box, crop_box, config)
        crop = crop.convert("RGBA")
        crop.putalpha(alpha)
    name = Path(record["frame"]).stem + ".png"
    atomic_write_bytes(out_dir / name, _png(crop))
    others = f"; {len(passed)} boxes passed, kept the best ({score:.3f} > {passed[1][0]:.3f})" if len(passed) > 1 \
        else ""
    record.update(file=name, verdict="kept", crop_box=crop_box.as_list(), width=crop.width, height=crop.height,
                  mask=mask_facts, reason=f"identity {score:.3f} >= {threshold:g}{others}")


def _alpha(segmenter: Segmenter, image: Image.Image, box: Box, crop_box: Box,
           config: CropConfig) -> tuple[Image.Image, dict[str, Any]]:
    """The crop's alpha channel: SAM's mask, dilated a little; the box itself where SAM finds (almost) nothing."""
    import cv2

    x0, y0, x1, y1 = crop_box.as_ints()
    mask = segmenter.segment(image, box)[y0:y1, x0:x1].astype(np.uint8) * 255
    source = "segmenter"
    if mask.mean() < 255 * 0.01:
        mask = np.zeros_like(mask)
        bx0, by0, bx1, by1 = box.as_ints()
        mask[max(0, by0 - y0):max(0, by1 - y0), max(0, bx0 - x0):max(0, bx1 - x0)] = 255
        source = "box (the segmenter found no mask)"
    radius = max(1, round(min(mask.shape) * config.mask_dilation))
    mask = cv2.dilate(mask, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8))
    return Image.fromarray(mask, "L"), {"source": source, "fraction": round(float(mask.mean() / 255), 4)}


def _png(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
