"""The written rules that turn raw measurements into metric values in [0, 1].

Every rule is a small object with ``apply`` and ``describe``: the report prints ``describe()`` next to
each metric, so no number in a score comes from a constant the reader cannot see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LinearRule:
    """``score = clamp((x - low) / (high - low), 0, 1)``.

    ``x = low`` scores 0, ``x = high`` scores 1, linear between. ``low > high`` is allowed and makes a
    decreasing rule (a smaller raw value is better, e.g. a clipped fraction).
    """

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low == self.high:
            raise ValueError(f"a linear rule needs two different finite ends, got low={self.low}, high={self.high}")

    def apply(self, value: float) -> float:
        if not math.isfinite(value):
            return 0.0
        return float(min(1.0, max(0.0, (value - self.low) / (self.high - self.low))))

    def describe(self, name: str = "x") -> str:
        return f"clamp(({name} - {self.low:g}) / ({self.high:g} - {self.low:g}), 0, 1)"


def mean_pairwise_cosine(embeddings: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cosine similarity over all distinct pairs, and each row's mean similarity to the others.

    With fewer than two rows there are no pairs: returns (nan, [nan...]).
    """
    rows = normalise_rows(embeddings)
    count = rows.shape[0]
    if count < 2:
        return float("nan"), np.full((count,), np.nan)
    similarity = rows @ rows.T
    off_diagonal = similarity.sum(axis=1) - np.diag(similarity)
    per_row = off_diagonal / (count - 1)
    return float(off_diagonal.sum() / (count * (count - 1))), per_row


def cosine_to_each(embeddings: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(N, M) cosine similarities between rows of ``embeddings`` and rows of ``others``."""
    return normalise_rows(embeddings) @ normalise_rows(others).T


def centroid(embeddings: np.ndarray) -> np.ndarray:
    """The unit-length mean direction of ``embeddings`` (the style of a set of images)."""
    mean = normalise_rows(embeddings).mean(axis=0, keepdims=True)
    return normalise_rows(mean)[0]


def softmax_first(similarities: np.ndarray, temperature: float) -> np.ndarray:
    """Per row, the softmax probability of column 0 among all columns at logit scale ``temperature``."""
    logits = temperature * np.asarray(similarities, dtype=np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights[:, 0] / weights.sum(axis=1)


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)
