"""How high can a learning curve still climb? An upper bound from the curve's own points.

Model: a saturating curve ``y = a - b * exp(-rate * epoch)`` (exponential approach to a plateau; the
straight line is its limit ``rate -> 0``). For each rate on a grid the fit is linear least squares in
``(a, b)``. The bound is the highest prediction at the trial's last epoch over every ``(a, b, rate)``
whose residual sum of squares exceeds the best fit's by at most ``confidence**2 * noise**2`` (a
likelihood confidence region for all three at once). Curves that saturate faster than exponentially (the quadratic rise to a peak)
are bounded conservatively; a curve that *accelerates* later (a restart, a sigmoid) is outside the model,
which is why the pruner never relies on this bound alone.

Rates may also be admitted by a second series sharing the curve's pace (the validation loss,
``y = c + d * exp(-rate * epoch)``): a rate either series allows is allowed, so a loss that is still
falling can only widen the bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

RATES: tuple[float, ...] = (0.0, *(0.005 * 1.2 ** i for i in range(36)))  # 0 (a line) up to ~3.4 per epoch


def _design(epochs: np.ndarray, rate: float) -> np.ndarray:
    if rate == 0.0:
        return np.column_stack([np.ones_like(epochs), epochs])
    return np.column_stack([np.ones_like(epochs), -np.exp(-rate * epochs)])


def _fit(epochs: np.ndarray, values: np.ndarray, rate: float) -> tuple[float, np.ndarray, np.ndarray]:
    """(residual sum of squares, coefficients, (X^T X)^-1) of the fit at ``rate``."""
    design = _design(epochs, rate)
    gram = design.T @ design
    if abs(np.linalg.det(gram)) < 1e-12:
        return math.inf, np.zeros(2), np.zeros((2, 2))
    inverse = np.linalg.inv(gram)
    coefficients = inverse @ design.T @ values
    residual = values - design @ coefficients
    return float(residual @ residual), coefficients, inverse


def admitted_rates(curve: Mapping[int, float], noise: float, confidence: float) -> list[float]:
    """The rates the curve's points do not reject (all of them when the curve has fewer than 3 points)."""
    if len(curve) < 3 or noise <= 0.0:
        return list(RATES)
    epochs = np.array(sorted(curve), dtype=float)
    values = np.array([curve[int(e)] for e in epochs])
    fits = [_fit(epochs, values, rate)[0] for rate in RATES]
    best = min(fits)
    limit = best + (confidence * noise) ** 2
    return [rate for rate, sse in zip(RATES, fits, strict=True) if sse <= limit]


def reachable_score(curve: Mapping[int, float], last_epoch: int, noise: float, *, confidence: float = 2.0,
                    also_rates: Sequence[float] = ()) -> float:
    """The highest score ``curve`` may reach by ``last_epoch`` under the saturating model: the largest
    prediction at ``last_epoch`` of any ``(a, b, rate)`` whose residual sum of squares lies within
    ``confidence**2 * noise**2`` of the best fit (one joint confidence region; for a fixed rate the
    largest prediction inside it is the fit's plus what is left of the allowance along the prediction's
    direction). Rates in ``also_rates`` are allowed the full allowance. With fewer than two points
    nothing is known and the bound is infinite."""
    if len(curve) < 2:
        return math.inf
    epochs = np.array(sorted(curve), dtype=float)
    values = np.array([curve[int(e)] for e in epochs])
    fits = {rate: _fit(epochs, values, rate) for rate in RATES}
    for rate in also_rates:
        fits.setdefault(rate, _fit(epochs, values, rate))
    best = min(sse for sse, _, _ in fits.values())
    allowance = (confidence * noise) ** 2
    highest = -math.inf
    for rate, (sse, coefficients, inverse) in fits.items():
        if not math.isfinite(sse):
            continue
        left = allowance if rate in also_rates else allowance - (sse - best)
        if left < 0.0:
            continue
        at_end = _design(np.array([float(last_epoch)]), rate)[0]
        spread = math.sqrt(max(float(at_end @ inverse @ at_end), 0.0))
        highest = max(highest, float(at_end @ coefficients) + math.sqrt(left) * spread)
    return highest


def residual_noise(curves: Sequence[Mapping[int, float]], *, min_points: int = 4) -> float | None:
    """The observation noise of ``curves`` (each cut where the model holds, e.g. up to its peak): the pooled
    residual of their best saturating fits, as a standard deviation; None when no curve has ``min_points``.
    The model's own misfit adds to it, which only widens the bounds built on it."""
    squares, freedom = 0.0, 0
    for curve in curves:
        if len(curve) < min_points:
            continue
        epochs = np.array(sorted(curve), dtype=float)
        values = np.array([curve[int(e)] for e in epochs])
        squares += min(_fit(epochs, values, rate)[0] for rate in RATES)
        freedom += len(curve) - 3  # a, b and the rate
    return math.sqrt(squares / freedom) if freedom else None
