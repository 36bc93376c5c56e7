"""What curation writes: one ``FrameRecord`` per input file (manifest.jsonl) and the funnel summary."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_write_text
from orchestrator.common.errors import UserInputError
from orchestrator.common.hashing import file_sha256

ACCEPTED, BORDERLINE, REJECTED = "accepted", "borderline", "rejected"
STAGES = ("decode", "quality", "dedup", "identity")
MANIFEST_NAME = "manifest.jsonl"
SUMMARY_NAME = "summary.json"
REVIEW_NAME = "review.html"


@dataclass
class FrameRecord:
    """One input file and what curation decided about it.

    ``relative_path`` (relative to the frames folder) is the frame's id on the review page and in a
    decisions file. ``stage`` is the stage that dropped it (None when accepted); ``reasons`` carry
    codes, human messages, measured values and limits. ``origin`` is what the stage before said about
    the file (extract: video, shot, time; crop: the source frame, its size, the character's box and the
    crop box, in the source frame's pixels), from the frames folder's manifest.jsonl.
    """

    path: str
    relative_path: str
    sha256: str | None
    verdict: str = ACCEPTED
    stage: str | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)
    measures: dict[str, float | int] | None = None
    phash: str | None = None
    identity_score: float | None = None
    duplicate_of: str | None = None
    hamming_distance: int | None = None
    origin: dict[str, Any] | None = None

    def reject(self, stage: str, reasons: list[dict[str, Any]], *, verdict: str = REJECTED) -> None:
        self.verdict, self.stage, self.reasons = verdict, stage, reasons

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_manifest(path: Path, records: list[FrameRecord]) -> None:
    lines = [json.dumps(r.to_dict(), ensure_ascii=False, allow_nan=False) for r in records]
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def curation_id(manifest: Path) -> str:
    """The identity of one curation's candidate set: a digest of its manifest (frames, hashes, verdicts).

    The review page writes it into every decisions file and ``curate apply`` checks it, so decisions made
    on another run's page (same file names, other frames or verdicts) are refused.
    """
    if not manifest.is_file():
        raise UserInputError("no curation manifest here; run `lora-pipeline curate` first", path=manifest)
    return file_sha256(manifest)[:16]


def read_manifest(path: Path) -> list[FrameRecord]:
    if not path.is_file():
        raise UserInputError("no curation manifest here; run `lora-pipeline curate` first", path=path)
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(FrameRecord(**json.loads(line)))
        except (json.JSONDecodeError, TypeError) as error:
            raise UserInputError(f"line {number} is not a frame record ({error})", path=path) from error
    return records


def funnel_counts(records: list[FrameRecord]) -> dict[str, int]:
    """How many frames survive each stage, in order."""
    dropped_at = Counter(r.stage for r in records if r.verdict != ACCEPTED)
    counts = {"frames": len(records)}
    remaining = len(records)
    for stage in STAGES:
        remaining -= dropped_at.get(stage, 0)
        counts[f"after_{stage}"] = remaining
    counts["borderline"] = sum(1 for r in records if r.verdict == BORDERLINE)
    return counts


def funnel_text(counts: dict[str, int]) -> str:
    """E.g. ``3,008 → 1,100 after quality → 480 after dedup → 413 after identity`` (decode failures
    are part of the quality step: an unreadable frame is the worst quality there is)."""
    return (f"{counts['frames']:,} → {counts['after_quality']:,} after quality → {counts['after_dedup']:,} "
            f"after dedup → {counts['after_identity']:,} after identity")


def rejection_histogram(records: list[FrameRecord]) -> dict[str, dict[str, int]]:
    """stage -> reason code -> count (a frame with two quality problems counts under both)."""
    histogram: dict[str, Counter[str]] = {stage: Counter() for stage in STAGES}
    for record in records:
        if record.verdict == REJECTED and record.stage:
            histogram[record.stage].update(reason["code"] for reason in record.reasons)
    return {stage: dict(sorted(counter.items())) for stage, counter in histogram.items()}
