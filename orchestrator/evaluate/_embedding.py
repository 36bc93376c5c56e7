"""Evaluation's use of the shared vision core: image embeddings (``orchestrator.vision.embed_files``,
cached by content + model), plus two small caches of its own so a re-score touches no model and
decodes no image:

- text embeddings (prompts, style anchors) go into the same :class:`EmbeddingCache`, keyed by the
  sha256 of ``"text\\0" + text`` (a key no image content hash can collide with in practice);
- per-image technical measures go into ``measures.sqlite`` beside it, keyed by content hash and
  the measuring rule's version.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from orchestrator.common.state_files import open_cache_database
from orchestrator.vision import (
    ClipEncoder,
    EmbeddingCache,
    ImageDecodeError,
    ImageMeasures,
    measure_image,
    open_image_rgb,
)

# Bump when measure_image's definitions change, so stale cached measures are not reused.
MEASURES_VERSION = "measure_image/v1"


def embed_texts_cached(encoder: ClipEncoder, texts: Sequence[str], cache: EmbeddingCache | None) -> np.ndarray:
    """L2-normalised rows (N, D) for ``texts``, computing only those not cached for this encoder."""
    keys = [hashlib.sha256(b"text\0" + text.encode("utf-8")).hexdigest() for text in texts]
    found = cache.get_many(encoder.identity, keys) if cache is not None else {}
    missing = [text for text, key in zip(texts, keys, strict=True) if key not in found]
    if missing:
        unique = list(dict.fromkeys(missing))
        vectors = encoder.embed_texts(unique)
        fresh = dict(zip(unique, vectors, strict=True))
        new_rows = {hashlib.sha256(b"text\0" + t.encode("utf-8")).hexdigest(): v for t, v in fresh.items()}
        if cache is not None:
            cache.put_many(encoder.identity, new_rows.items())
        found = {**found, **new_rows}
    if not texts:
        return np.zeros((0, encoder.embedding_dim), dtype=np.float32)
    return np.stack([found[key] for key in keys]).astype(np.float32)


class MeasuresCache:
    """``ImageMeasures`` by content hash in ``cache_dir/measures.sqlite`` (or in memory without a dir)."""

    def __init__(self, cache_dir: Path | None) -> None:
        schema = ("CREATE TABLE IF NOT EXISTS measures (version TEXT, sha256 TEXT, json TEXT, "
                  "PRIMARY KEY (version, sha256))")
        if cache_dir is None:
            self._db = sqlite3.connect(":memory:")
            self._db.execute(schema)
        else:
            cache_dir.mkdir(parents=True, exist_ok=True)
            self._db = open_cache_database(cache_dir / "measures.sqlite", schema, what="measures cache", wal=False)

    def close(self) -> None:
        self._db.close()

    def measures_for(self, paths: Sequence[Path], hashes: Sequence[str], *,
                     measured: Mapping[str, ImageMeasures] | None = None,
                     ) -> tuple[dict[Path, ImageMeasures], dict[Path, ImageDecodeError]]:
        """Measures of each file (decoded only when neither cached nor in ``measured``, by content hash:
        e.g. what ``embed_files(also=measure_image)`` measured while it decoded) and the files that
        failed to decode."""
        found: dict[str, ImageMeasures] = {}
        fresh: list[tuple[str, str, str]] = []
        for sha, value in (measured or {}).items():
            if isinstance(value, ImageMeasures):
                found[sha] = value
                fresh.append((MEASURES_VERSION, sha, json.dumps(value.to_dict())))
        for sha in set(hashes) - set(found):
            row = self._db.execute("SELECT json FROM measures WHERE version = ? AND sha256 = ?",
                                   (MEASURES_VERSION, sha)).fetchone()
            if row:
                try:
                    found[sha] = ImageMeasures(**json.loads(row[0]))
                except (TypeError, ValueError):
                    pass  # a damaged row is a miss: measured again and written over
        result: dict[Path, ImageMeasures] = {}
        failures: dict[Path, ImageDecodeError] = {}
        for path, sha in zip(paths, hashes, strict=True):
            if sha not in found:
                try:
                    found[sha] = measure_image(open_image_rgb(path))
                except ImageDecodeError as error:
                    failures[path] = error
                    continue
                fresh.append((MEASURES_VERSION, sha, json.dumps(found[sha].to_dict())))
            result[path] = found[sha]
        if fresh:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO measures VALUES (?, ?, ?)", fresh)
        return result, failures
