"""How a frame's similarity to many reference images becomes one identity score.

The single implementation used by curation (keep frames at or above a threshold) and by evaluation
(how much a sample looks like the character).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_KINDS = ("mean_top_k", "max", "mean")


@dataclass(frozen=True)
class IdentityRule:
    """The aggregation of per-reference cosine similarities into one score.

    The rule: a frame's score is the **mean of its k highest cosine similarities** to the references
    (``kind="mean_top_k"``, default k = 5; k larger than the number of references uses all of them).
    ``kind="max"`` is the same rule with k = 1 and ``kind="mean"`` with k = all references.
    Top-k rather than max makes one look-alike reference insufficient; rather than the plain mean,
    it does not punish a frame for not matching references of other poses, outfits or angles.

    Example::

        >>> rule = IdentityRule("mean_top_k", k=2)
        >>> identity_scores(np.array([[1.0, 0.0]]), np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]), rule)
        array([0.8], dtype=float32)
    """

    kind: str = "mean_top_k"
    k: int = 5

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown identity rule kind {self.kind!r}; known: {', '.join(_KINDS)}")
        if self.k < 1:
            raise ValueError(f"identity rule k must be >= 1, got {self.k}")

    def effective_k(self, reference_count: int) -> int:
        if self.kind == "max":
            return 1
        if self.kind == "mean":
            return reference_count
        return min(self.k, reference_count)

    def describe(self) -> str:
        if self.kind == "max":
            return "max cosine similarity over references"
        if self.kind == "mean":
            return "mean cosine similarity over all references"
        return f"mean of the top-{self.k} cosine similarities over references"


def identity_scores(embeddings: np.ndarray, references: np.ndarray, rule: IdentityRule | None = None) -> np.ndarray:
    """Score each row of ``embeddings`` (N, D) against ``references`` (R, D) with ``rule``.

    Rows are L2-normalised here (a no-op for :class:`ClipEncoder` output), so similarities are
    cosines in -1..1. Returns float32 of shape (N,). Raises ``ValueError`` with no references.
    """
    rule = rule or IdentityRule()
    embeddings = _as_rows(embeddings)
    references = _as_rows(references)
    if references.shape[0] == 0:
        raise ValueError("identity_scores needs at least one reference embedding")
    if embeddings.shape[0] == 0:
        return np.zeros((0,), dtype=np.float32)
    if embeddings.shape[1] != references.shape[1]:
        raise ValueError(
            f"embedding width {embeddings.shape[1]} != reference width {references.shape[1]} "
            "(embedded with different models?)"
        )
    similarities = _normalise(embeddings) @ _normalise(references).T  # (N, R)
    k = rule.effective_k(references.shape[0])
    # partition, not sort: only the k largest per row are needed.
    top = np.partition(similarities, similarities.shape[1] - k, axis=1)[:, -k:]
    return top.mean(axis=1).astype(np.float32)


def _as_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    return matrix.reshape(1, -1) if matrix.ndim == 1 else matrix


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)
