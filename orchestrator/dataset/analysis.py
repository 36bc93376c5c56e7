"""Per-frame analysis: content hash, quality measures and perceptual hash, from one decode.

Results are cached by content hash (``analysis.sqlite`` beside the embedding cache) together
with the analysis settings, so a re-run with other thresholds decodes nothing. Decoding runs in a
thread pool; only small results are kept, never the pixels.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from orchestrator.common.progress import track
from orchestrator.common.state_files import open_cache_database
from orchestrator.dataset.dedup import hash_to_int
from orchestrator.vision import EmbeddingCache, ImageDecodeError, ImageMeasures, measure_image, open_image_rgb
from orchestrator.vision._cache import hash_file

# Bump when measure_image or the hashing changes meaning: old cached rows are then ignored.
ANALYSIS_VERSION = 1


@dataclass(frozen=True)
class FrameAnalysis:
    path: Path
    sha256: str | None
    measures: ImageMeasures | None = None
    phash: int | None = None
    error_reason: str | None = None  # ImageDecodeError.reason when the file cannot be used
    error_message: str | None = None

    @property
    def readable(self) -> bool:
        return self.error_reason is None


class AnalysisStore:
    """(sha256, settings) -> analysis payload, in ``cache_dir/analysis.sqlite``."""

    def __init__(self, cache_dir: Path) -> None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        self._db = open_cache_database(
            cache_dir / "analysis.sqlite", "CREATE TABLE IF NOT EXISTS analysis (sha256 TEXT, settings TEXT, "
            "payload TEXT, PRIMARY KEY (sha256, settings))", what="analysis cache")

    def get(self, sha: str, settings: str) -> dict | None:
        row = self._db.execute("SELECT payload FROM analysis WHERE sha256 = ? AND settings = ?",
                               (sha, settings)).fetchone()
        try:  # a damaged row is a miss: analysed again and written over
            payload = json.loads(row[0]) if row else None
        except (TypeError, ValueError):
            return None
        return payload if isinstance(payload, dict) else None

    def put_many(self, rows: list[tuple[str, str, dict]]) -> None:
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO analysis VALUES (?, ?, ?)",
                                 [(sha, settings, json.dumps(payload)) for sha, settings, payload in rows])

    def close(self) -> None:
        self._db.close()


def analyse_frames(paths: list[Path], *, hash_size: int, hashes: EmbeddingCache | None = None,
                   store: AnalysisStore | None = None, workers: int = 2,
                   progress: bool = True) -> list[FrameAnalysis]:
    """Analyse every path (in order). Unusable files come back with ``error_reason`` set; never raises
    for a bad file."""
    settings = f"v{ANALYSIS_VERSION}:phash{hash_size}"
    known = {p: hashes.known_hash(p) for p in paths} if hashes is not None else {}
    results: dict[Path, FrameAnalysis] = {}
    to_do: list[tuple[Path, str | None]] = []
    for path in paths:
        sha = known.get(path)
        cached = store.get(sha, settings) if store is not None and sha else None
        if cached is not None:
            results[path] = _from_payload(path, sha, cached)
        else:
            to_do.append((path, sha))
    fresh_hashes, fresh_payloads = [], []
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="analyse") as pool:
        outcomes = pool.map(lambda item: _analyse_one(item[0], item[1], hash_size), to_do)
        if progress and to_do:
            outcomes = track(outcomes, total=len(to_do), description="measuring frames", unit="frame")
        for (path, known_sha), (analysis, hash_row) in zip(to_do, outcomes, strict=True):
            results[path] = analysis
            if hash_row is not None and known_sha is None:
                fresh_hashes.append(hash_row)
            # "missing"/"unreadable" depend on the moment, not on the content: never cached.
            if analysis.sha256 is not None and analysis.error_reason not in ("missing", "unreadable"):
                fresh_payloads.append((analysis.sha256, settings, _to_payload(analysis)))
    if hashes is not None and fresh_hashes:
        hashes.remember_hashes(fresh_hashes)
    if store is not None and fresh_payloads:
        store.put_many(fresh_payloads)
    return [results[p] for p in paths]


def _analyse_one(path: Path, sha: str | None, hash_size: int) -> tuple[FrameAnalysis, tuple | None]:
    import imagehash

    hash_row = None
    try:
        if sha is None:
            hash_row = hash_file(path)
            sha = hash_row[3]
        image = open_image_rgb(path)
        measures = measure_image(image)
        phash = hash_to_int(imagehash.phash(image, hash_size=hash_size).hash)
        return FrameAnalysis(path, sha, measures, phash), hash_row
    except ImageDecodeError as error:
        return FrameAnalysis(path, sha, error_reason=error.reason, error_message=error.detail), hash_row
    except OSError as error:
        return FrameAnalysis(path, sha, error_reason="unreadable", error_message=str(error)), hash_row


def _to_payload(analysis: FrameAnalysis) -> dict:
    if not analysis.readable:
        return {"error_reason": analysis.error_reason, "error_message": analysis.error_message}
    assert analysis.measures is not None
    return {"measures": analysis.measures.to_dict(), "phash": analysis.phash}


def _from_payload(path: Path, sha: str, payload: dict) -> FrameAnalysis:
    if "error_reason" in payload:
        message = payload["error_message"]
        return FrameAnalysis(path, sha, error_reason=payload["error_reason"], error_message=message)
    return FrameAnalysis(path, sha, ImageMeasures(**payload["measures"]), int(payload["phash"]))
