"""A ranking from pairwise votes: the Davidson extension of Bradley–Terry, with bootstrap intervals.

Each candidate ``i`` has a strength ``theta_i``; with ``pi = exp(theta)`` and a tie parameter ``nu``::

    P(i better than j) = pi_i / D,   P(tie) = nu * sqrt(pi_i * pi_j) / D,
    D = pi_i + pi_j + nu * sqrt(pi_i * pi_j)

(Davidson 1970), so a tie counts as half a win for both sides and ``nu`` is learnt from how often the
person says "tie". A weak Gaussian prior on ``theta`` (standard deviation 3) fixes the scale's origin
and keeps strengths finite when one candidate won every vote. Intervals are percentiles of the same fit
on votes resampled with replacement (the person's votes are the sampling unit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from orchestrator.verdict.votes import Vote

PRIOR_PRECISION = 1.0 / 9.0  # theta ~ N(0, 3^2): weak against ~10 votes, enough to stay finite


@dataclass(frozen=True)
class VoteArrays:
    first: np.ndarray  # candidate index per vote
    second: np.ndarray
    outcome: np.ndarray  # 1 first better, 0 second better, 0.5 tie

    @classmethod
    def from_votes(cls, votes: Sequence[Vote], ids: Sequence[str]) -> VoteArrays:
        index = {candidate: i for i, candidate in enumerate(ids)}
        return cls(np.array([index[v.first] for v in votes], dtype=int),
                   np.array([index[v.second] for v in votes], dtype=int),
                   np.array([v.outcome for v in votes], dtype=float))

    def resample(self, rng: np.random.Generator) -> VoteArrays:
        pick = rng.integers(0, len(self.outcome), len(self.outcome))
        return VoteArrays(self.first[pick], self.second[pick], self.outcome[pick])


def davidson_nll(theta: np.ndarray, log_nu: float, votes: VoteArrays) -> tuple[float, np.ndarray, float]:
    """Negative log-likelihood of the votes and its gradient in ``theta`` and ``log_nu``."""
    a, b = theta[votes.first], theta[votes.second]
    nu = np.exp(log_nu)
    top = np.maximum(a, b)
    ea, eb, em = np.exp(a - top), np.exp(b - top), np.exp((a + b) / 2 - top)
    denominator = ea + eb + nu * em
    log_d = np.log(denominator) + top
    won, lost = votes.outcome == 1.0, votes.outcome == 0.0
    tied = ~(won | lost)
    log_p = np.where(won, a, np.where(lost, b, log_nu + (a + b) / 2)) - log_d
    d_a = np.where(won, 1.0, np.where(lost, 0.0, 0.5)) - (ea + nu * em / 2) / denominator
    d_b = np.where(lost, 1.0, np.where(won, 0.0, 0.5)) - (eb + nu * em / 2) / denominator
    d_log_nu = tied.astype(float) - nu * em / denominator
    grad = np.zeros_like(theta)
    np.add.at(grad, votes.first, -d_a)
    np.add.at(grad, votes.second, -d_b)
    return float(-log_p.sum()), grad, float(-d_log_nu.sum())


def fit_strengths(votes: VoteArrays, size: int) -> tuple[np.ndarray, float]:
    """Maximum a posteriori strengths (centred) and the tie parameter ``nu``."""
    def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        theta, log_nu = params[:-1], params[-1]
        value, grad_theta, grad_nu = davidson_nll(theta, log_nu, votes)
        value += 0.5 * PRIOR_PRECISION * float(theta @ theta)
        return value, np.append(grad_theta + PRIOR_PRECISION * theta, grad_nu)

    start = np.zeros(size + 1)
    start[-1] = -1.0
    bounds = [(None, None)] * size + [(-12.0, 4.0)]  # nu from "never ties" to "mostly ties"
    result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds)
    theta = result.x[:-1]
    return theta - theta.mean(), float(np.exp(result.x[-1]))


@dataclass(frozen=True)
class Ranking:
    """The person's ranking: strengths with 95% intervals, best first."""

    ids: tuple[str, ...]  # best first
    strength: dict[str, float]
    interval: dict[str, tuple[float, float]]
    probability_first: dict[str, float]  # share of resamples in which this candidate ranks first
    tie_parameter: float
    top_margin: float  # strength of the first minus the second
    top_margin_interval: tuple[float, float]
    votes: int

    @property
    def separated(self) -> bool:
        """The votes separate the top: the first beats the second in 95% of the resampled fits."""
        return len(self.ids) > 1 and self.top_margin_interval[0] > 0.0


def rank(votes: Sequence[Vote], ids: Sequence[str], *, resamples: int = 300, seed: int = 0) -> Ranking:
    ids = tuple(ids)
    arrays = VoteArrays.from_votes(votes, ids)
    theta, nu = fit_strengths(arrays, len(ids))
    order = np.argsort(-theta, kind="stable")
    first, second = int(order[0]), int(order[1]) if len(ids) > 1 else int(order[0])
    rng = np.random.default_rng(seed)
    draws = np.array([fit_strengths(arrays.resample(rng), len(ids))[0] for _ in range(resamples)])
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    margins = draws[:, first] - draws[:, second]
    winners = np.bincount(np.argmax(draws, axis=1), minlength=len(ids)) / resamples
    return Ranking(
        ids=tuple(ids[i] for i in order),
        strength={ids[i]: float(theta[i]) for i in range(len(ids))},
        interval={ids[i]: (float(low[i]), float(high[i])) for i in range(len(ids))},
        probability_first={ids[i]: float(winners[i]) for i in range(len(ids))},
        tie_parameter=nu,
        top_margin=float(theta[first] - theta[second]),
        top_margin_interval=(float(np.percentile(margins, 2.5)), float(np.percentile(margins, 97.5))),
        votes=len(votes),
    )
