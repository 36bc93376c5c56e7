"""The noise of an epoch's total: a bootstrap over its samples (one per prompt and seed).

Each resample draws the epoch's samples with replacement and recomputes the total exactly as the
epoch's own total is computed (means of the per-sample calibrated values, character variety among the
distinct drawn samples). Samples are ordered by (prompt, seed) and the generator is seeded from the
config, so every epoch with the same prompts and seeds is resampled with the same draws (the epochs'
intervals are then comparable, like a paired test) and a re-score gives the same interval.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from orchestrator.evaluate._config import NoiseSettings

#: (drawn row indices) -> that resample's total
ResampleTotal = Callable[[np.ndarray], float]


def bootstrap_interval(count: int, total_of: ResampleTotal, settings: NoiseSettings) -> tuple[float, float] | None:
    """The central ``settings.level`` interval of ``total_of`` over resamples of ``count`` samples."""
    if count == 0:
        return None
    rng = np.random.default_rng(settings.seed)
    draws = rng.integers(0, count, size=(settings.resamples, count))
    totals = np.array([total_of(row) for row in draws], dtype=np.float64)
    tail = (1.0 - settings.level) / 2.0
    low, high = np.quantile(totals, [tail, 1.0 - tail])
    return float(low), float(high)
