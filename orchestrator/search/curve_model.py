"""A learning-curve model shared across configurations: how much more will a run still gain?

The scheduler (``scheduler.py``) asks one question about a run paused or trained up to a sample epoch: what
will its best score be once it is run to its end, and how sure is that? The answer is the run's best score
so far plus a predicted *gain*, learnt from the runs that already went to their end (or past their peak):
each of their sample epochs is one example "at this fraction of its epochs, with this pace and this local
slope, the run still gained G".

The pace of a run is predicted from its parameters -- learning rate, alpha/dim, gradient accumulation, the
scheduler, the number of epochs -- and from its own partial curve (the last change of its score and of its
validation loss). A slow learner at 30% of its epochs still gains a lot; a fast one at the same point is
near its peak; the features interact with ``1 - fraction`` so the model can learn exactly that.

Why a ridge regression and not a Gaussian process or a neural curve model (DyHPO, ifBO): a search has
5-40 finished curves, the features are few and meaningful, and a Bayesian linear model gives an honest
predictive variance in closed form (``s^2 (1 + phi' A^-1 phi)``) with nothing to tune and no dependency.
The per-parameter terms are penalised (``CONFIG_PENALTY``) and the pooled ones (intercept, fraction) hardly:
with few curves the model falls back to "runs at this fraction gain this much on average" with a wide
interval, and it learns the per-config pace as finished curves accumulate. The residual scale is itself
fitted against the fraction (a run near its end has little left to vary) and shrunk to a prior scale
(the spread of the observed gains) while data are few.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from orchestrator.search.constraints import TrainingChoices

CONFIG_PENALTY = 3.0  # ridge penalty (per example, in standardised units) on per-config terms
POOLED_PENALTY = 1e-3  # on the intercept and the fraction terms
PRIOR_WEIGHT = 4.0  # pseudo-examples behind the prior residual scale
MIN_PRIOR_SCALE = 0.05  # the evaluator's scores lie in [0, 1]: before any evidence, a run may differ this much
MIN_EXAMPLES = 4  # below this the model only says "anything may happen": the widest prior interval


@dataclass(frozen=True)
class Pace:
    """What a run's pace is predicted from: its parameters (fixed for the run)."""

    log_lr: float  # log2(learning rate / 1e-4)
    alpha_ratio: float
    log_accumulation: float
    constant: float  # 1 for a constant schedule
    restarts: float  # 1 for cosine with restarts
    log_epochs: float  # log2(last epoch / 16)

    @classmethod
    def of(cls, flat: Mapping[str, Any]) -> Pace:
        choices = TrainingChoices.from_flat_config(flat)
        scheduler = str(flat.get("lr_scheduler", "cosine"))
        epochs = int(flat.get("max_train_epochs") or 10)
        return cls(math.log2(max(choices.learning_rate, 1e-12) / 1e-4), choices.alpha_ratio - 0.5,
                   math.log2(max(choices.gradient_accumulation_steps, 1)), float(scheduler == "constant"),
                   float(scheduler.startswith("cosine_with_restarts")), math.log2(max(epochs, 1) / 16))

    def values(self) -> tuple[float, ...]:
        return (self.log_lr, self.alpha_ratio, self.log_accumulation, self.constant, self.restarts,
                self.log_epochs)


@dataclass(frozen=True)
class CurveState:
    """A run as far as it has been trained: its pace, the epochs it samples, and its scores so far."""

    pace: Pace
    sample_epochs: tuple[int, ...]
    scores: Mapping[int, float]
    validation_losses: Mapping[int, float] | None = None

    @property
    def last_epoch(self) -> int:
        return self.sample_epochs[-1] if self.sample_epochs else 1

    @property
    def best(self) -> float:
        return max(self.scores.values()) if self.scores else -math.inf

    def upto(self, rung: int) -> CurveState:
        """The run as it was at its ``rung``-th sample epoch (1-based)."""
        kept = sorted(self.scores)[:rung]
        losses = self.validation_losses or {}
        return CurveState(self.pace, self.sample_epochs, {e: self.scores[e] for e in kept},
                          {e: losses[e] for e in kept if e in losses})


@dataclass(frozen=True)
class Prediction:
    mean: float  # expected best score of the whole run
    std: float  # its predictive standard deviation
    best: float  # the best score observed so far (a floor)

    def upper(self, kappa: float) -> float:
        return self.mean + kappa * self.std


def _features(state: CurveState) -> np.ndarray:
    epochs = sorted(state.scores)
    last = epochs[-1]
    fraction = last / max(state.last_epoch, 1)
    rest = 1.0 - fraction
    slope = 0.0
    loss_slope = 0.0
    if len(epochs) >= 2:
        before = epochs[-2]
        slope = (state.scores[last] - state.scores[before]) / max(last - before, 1) * state.last_epoch
        losses = state.validation_losses or {}
        if last in losses and before in losses:
            loss_slope = (losses[last] - losses[before]) / max(last - before, 1) * state.last_epoch
    pace = state.pace.values()
    # pooled terms first (intercept, rest, rest^2), then per-config terms and their interaction with ``rest``
    return np.array([1.0, rest, rest * rest, *pace, *(rest * v for v in pace), slope * rest, loss_slope * rest])


POOLED_TERMS = 3


@dataclass
class CurveModel:
    """Fitted on finished curves; predicts any run's final best with an interval."""

    weights: np.ndarray | None = None
    inverse: np.ndarray | None = None  # (X'X + penalty)^-1 in standardised units
    scale: np.ndarray | None = None  # feature scales (standardisation)
    residual_intercept: float = 0.0  # residual scale: a + b * rest
    residual_slope: float = 0.0
    prior_scale: float = 0.1
    examples: int = 0

    @classmethod
    def fit(cls, finished: Sequence[CurveState], *, others: Sequence[CurveState] = (),
            prior_scale: float | None = None) -> CurveModel:
        """Learn from the ``finished`` curves; ``others`` (runs still going) only widen the prior scale."""
        rows, gains = [], []
        for state in finished:
            final = state.best
            for rung in range(1, len(state.scores)):
                partial = state.upto(rung)
                rows.append(_features(partial))
                gains.append(final - partial.best)
        spread = float(np.std(gains)) if len(gains) >= 2 else 0.0
        prior = prior_scale if prior_scale is not None else max(spread, _score_spread([*finished, *others]),
                                                                MIN_PRIOR_SCALE)
        model = cls(prior_scale=prior, examples=len(rows))
        if len(rows) < MIN_EXAMPLES:
            return model
        x = np.vstack(rows)
        y = np.array(gains)
        scale = np.maximum(np.abs(x).max(axis=0), 1e-9)
        z = x / scale
        penalty = np.full(z.shape[1], CONFIG_PENALTY)
        penalty[:POOLED_TERMS] = POOLED_PENALTY
        inverse = np.linalg.inv(z.T @ z + np.diag(penalty))
        weights = inverse @ z.T @ y
        residuals = np.abs(y - z @ weights) * math.sqrt(math.pi / 2)  # E|N(0,s)| = s * sqrt(2/pi)
        rest = x[:, 1]
        design = np.vstack([np.ones_like(rest), rest]).T
        (a, b), *_ = np.linalg.lstsq(design, residuals, rcond=None)
        model.weights, model.inverse, model.scale = weights, inverse, scale
        model.residual_intercept, model.residual_slope = float(a), float(b)
        return model

    @property
    def ready(self) -> bool:
        return self.weights is not None

    def predict(self, state: CurveState) -> Prediction:
        best = state.best
        if not state.scores:
            return Prediction(-math.inf, math.inf, -math.inf)
        rest = 1.0 - sorted(state.scores)[-1] / max(state.last_epoch, 1)
        if rest <= 0:
            return Prediction(best, 0.0, best)
        if not self.ready:
            # No curves to learn from: a wide interval around "it may still gain as much as runs differ".
            return Prediction(best + 0.5 * self.prior_scale * rest, 2.0 * self.prior_scale * math.sqrt(rest), best)
        assert self.weights is not None and self.inverse is not None and self.scale is not None
        z = _features(state) / self.scale
        gain = max(float(z @ self.weights), 0.0)
        fitted = max(self.residual_intercept + self.residual_slope * rest, 0.0)
        # Shrink the fitted residual scale toward the prior while examples are few (an honest interval).
        variance = (self.examples * fitted ** 2 + PRIOR_WEIGHT * (self.prior_scale * rest) ** 2) \
            / (self.examples + PRIOR_WEIGHT)
        leverage = float(z @ self.inverse @ z)
        return Prediction(best + gain, math.sqrt(variance * (1.0 + leverage)), best)


def _score_spread(states: Sequence[CurveState]) -> float:
    finals = [s.best for s in states if s.scores]
    return float(np.std(finals)) if len(finals) >= 2 else 0.0
