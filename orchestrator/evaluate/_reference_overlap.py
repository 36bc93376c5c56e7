"""References that are training images: found by content hash, then by perceptual hash.

Identity against a reference that is also a training frame rewards reproducing that frame, the very
memorisation the gates exclude; so such references are reported, and by default dropped from the
identity set (``[references] training_overlap``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.dataset.dedup import hash_to_int
from orchestrator.vision import ImageDecodeError, open_image_rgb

_PHASH_SIZE = 8  # 64-bit pHash, as curation uses


@dataclass(frozen=True)
class ReferenceOverlap:
    reference: Path
    training: Path
    how: str  # "same file content" or "near-duplicate (pHash distance N bits)"


def find_training_overlap(references: list[tuple[Path, str]], training: list[tuple[Path, str]], *,
                          max_bits: int) -> list[ReferenceOverlap]:
    """Each reference (path, sha256) that equals or nearly equals a training image (path, sha256)."""
    by_hash = {sha: path for path, sha in training}
    found = [ReferenceOverlap(path, by_hash[sha], "same file content") for path, sha in references if sha in by_hash]
    exact = {overlap.reference for overlap in found}
    rest = [path for path, _ in references if path not in exact]
    if not rest or not training:
        return found
    training_hashes = [(path, h) for path, h in ((p, _phash(p)) for p, _ in training) if h is not None]
    for path in rest:
        reference_hash = _phash(path)
        if reference_hash is None or not training_hashes:
            continue
        nearest, distance = min(((t, bin(reference_hash ^ h).count("1")) for t, h in training_hashes),
                                key=lambda pair: pair[1])
        if distance <= max_bits:
            found.append(ReferenceOverlap(path, nearest, f"near-duplicate (pHash distance {distance} bits)"))
    return found


def _phash(path: Path) -> int | None:
    import imagehash

    try:
        return hash_to_int(imagehash.phash(open_image_rgb(path), hash_size=_PHASH_SIZE).hash)
    except (ImageDecodeError, OSError):
        return None
