"""Metric weights that explain the person's votes: the same Davidson model with ``theta = X u``.

``X`` holds each candidate's metric scores; ``u >= 0`` is fitted by maximum likelihood on the votes
(bounded L-BFGS-B). The weights are ``w = u / sum(u)`` (non-negative, adding up to 1, like the
evaluation config's) and ``sum(u)`` is how sharply the weighted total predicts the person's choices.
Intervals are percentiles over votes resampled with replacement. A metric that is equal for all
candidates cannot be learnt from these votes and is reported as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from orchestrator.verdict.ranking import VoteArrays, davidson_nll
from orchestrator.verdict.votes import Vote

_RIDGE = 1e-6  # keeps u finite when the weighted total separates every vote


@dataclass(frozen=True)
class FittedWeights:
    metrics: tuple[str, ...]
    weights: dict[str, float]  # point estimate, sums to 1
    interval: dict[str, tuple[float, float]]  # 95% percentile interval
    sharpness: float  # sum(u): 0 means the metrics do not explain the votes at all
    unidentified: tuple[str, ...]  # metrics equal (or missing) for every candidate
    votes: int

    @property
    def informative(self) -> bool:
        return self.sharpness > 1e-6


def metric_matrix(metric_values: Sequence[dict[str, float | None]], metrics: Sequence[str]) -> np.ndarray:
    """Candidates x metrics; a missing value takes the mean of the others (it then carries no signal)."""
    table = np.array([[np.nan if row.get(m) is None else float(row[m]) for m in metrics]
                      for row in metric_values], dtype=float)
    means = np.nanmean(np.where(np.isnan(table).all(axis=0), 0.0, table), axis=0)
    return np.where(np.isnan(table), means, table)


def _fit(matrix: np.ndarray, votes: VoteArrays, start: np.ndarray) -> np.ndarray:
    def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        u, log_nu = params[:-1], params[-1]
        value, grad_theta, grad_nu = davidson_nll(matrix @ u, log_nu, votes)
        return value + 0.5 * _RIDGE * float(u @ u), np.append(matrix.T @ grad_theta + _RIDGE * u, grad_nu)

    bounds = [(0.0, None)] * matrix.shape[1] + [(-12.0, 4.0)]
    return minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds).x


def _normalise(u: np.ndarray) -> np.ndarray:
    total = u.sum()
    return u / total if total > 1e-9 else np.full_like(u, 1.0 / len(u))


def fit_weights(votes: Sequence[Vote], ids: Sequence[str], metric_values: Sequence[dict[str, float | None]],
                metrics: Sequence[str], *, resamples: int = 300, seed: int = 0) -> FittedWeights:
    metrics = tuple(metrics)
    matrix = metric_matrix(metric_values, metrics)
    arrays = VoteArrays.from_votes(votes, ids)
    # Spread of each metric over the candidates: scaling columns to unit spread conditions the fit.
    spread = matrix.max(axis=0) - matrix.min(axis=0)
    unidentified = tuple(m for m, s in zip(metrics, spread, strict=True) if s < 1e-9)
    scale = np.where(spread < 1e-9, 1.0, spread)
    scaled = (matrix - matrix.min(axis=0)) / scale
    start = np.append(np.ones(len(metrics)), -1.0)
    point = _fit(scaled, arrays, start)
    u = np.where(spread < 1e-9, 0.0, point[:-1] / scale)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        fitted = _fit(scaled, arrays.resample(rng), point)
        draws.append(_normalise(np.where(spread < 1e-9, 0.0, fitted[:-1] / scale)))
    low, high = np.percentile(np.array(draws), [2.5, 97.5], axis=0)
    weights = _normalise(u)
    return FittedWeights(
        metrics=metrics,
        weights={m: float(w) for m, w in zip(metrics, weights, strict=True)},
        interval={m: (float(lo), float(hi)) for m, lo, hi in zip(metrics, low, high, strict=True)},
        sharpness=float(u.sum()), unidentified=unidentified, votes=len(votes))
