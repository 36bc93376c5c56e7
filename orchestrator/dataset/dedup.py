"""Near-duplicate grouping: consecutive film frames are nearly identical; keep the sharpest of each group.

Greedy leader clustering in order of decreasing sharpness: each frame joins the nearest kept frame
whose perceptual hash is within ``max_distance`` bits, otherwise it is kept itself. So every group's
kept frame is its sharpest, every dropped frame names the kept frame it duplicates, and a slow pan
cannot chain distant frames into one group (each member is close to the kept frame itself, unlike
single-linkage grouping).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

K = TypeVar("K")


@dataclass(frozen=True)
class DedupCandidate(Generic[K]):
    key: K
    phash: int  # perceptual hash bits as an integer (imagehash hash, flattened)
    sharpness: float  # higher = sharper (Laplacian variance)


@dataclass(frozen=True)
class Duplicate(Generic[K]):
    key: K
    kept: K
    distance: int  # Hamming distance between the two hashes


def find_near_duplicates(candidates: Sequence[DedupCandidate[K]], max_distance: int) -> dict[K, Duplicate[K]]:
    """Map each dropped candidate's key to the kept one it duplicates. Ties in sharpness keep the
    earlier candidate (film order). Hashes up to 64 bits."""
    order = sorted(range(len(candidates)), key=lambda i: (-candidates[i].sharpness, i))
    kept_hashes = np.zeros(len(candidates), dtype=np.uint64)
    kept_keys: list[K] = []
    dropped: dict[K, Duplicate[K]] = {}
    for index in order:
        candidate = candidates[index]
        if kept_keys:
            distances = _popcount(kept_hashes[: len(kept_keys)] ^ np.uint64(candidate.phash))
            nearest = int(np.argmin(distances))
            if distances[nearest] <= max_distance:
                dropped[candidate.key] = Duplicate(candidate.key, kept_keys[nearest], int(distances[nearest]))
                continue
        kept_hashes[len(kept_keys)] = candidate.phash
        kept_keys.append(candidate.key)
    return dropped


def _popcount(values: np.ndarray) -> np.ndarray:
    as_bytes = values.view(np.uint8).reshape(-1, 8)
    return np.unpackbits(as_bytes, axis=1).sum(axis=1)


def hash_to_int(hash_bits: np.ndarray) -> int:
    """An imagehash ``ImageHash.hash`` boolean array as an integer (row-major bits)."""
    flat = np.asarray(hash_bits, dtype=bool).ravel()
    if flat.size > 64:
        raise ValueError(f"perceptual hashes above 64 bits are not supported (got {flat.size}); use hash_size <= 8")
    return int("".join("1" if bit else "0" for bit in flat), 2) if flat.size else 0
