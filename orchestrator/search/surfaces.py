"""Five families of synthetic response surfaces behind :class:`~orchestrator.search.surface.ResponseSurface`.

Each family is one shape of "how a LoRA run's score and validation loss move with its config and epoch".
All share what the guide reports for a character LoRA (an optimum learning rate near 8.5e-5, alpha/dim
near one half, a peak epoch that comes earlier with a hotter learning rate, runs that break a safety rule
diverging); ``seed`` moves the optimum. They differ where a search strategy could be fooled:

* ``quadratic``  the project's original surface: quadratic rise to the peak, quadratic over-fitting after
  it, noise 0.003, a validation loss that tracks the score closely.
* ``late``       saturating curves whose best configs are the slow learners, peaking late (often at the
  last epoch): a rule that reads early epochs as final scores throws the winner away.
* ``noisy``      the quadratic shape with noise 0.012 per observed score (CLIP over 30 prompts is noisier
  than 0.003): one lucky or unlucky sample epoch must not decide.
* ``restarts``   under ``cosine_with_restarts`` each restart knocks the score down and it climbs back
  higher: a curve that dips is not necessarily past its peak.
* ``loose``      saturating curves whose validation loss follows how far training has fitted, shifted by
  config choices that do not matter to the score: it correlates only loosely with the score.

The sample epochs follow sd-scripts (:func:`orchestrator.kohya.schedule.sample_epochs`).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from orchestrator.kohya.schedule import sample_epochs
from orchestrator.search.constraints import TrainingChoices, check_constraints

_SCHEDULER = {"cosine_with_restarts": 0.0, "cosine": -0.004, "constant": -0.02}
_MIN_SNR = {0: -0.015, 5: 0.0, 10: -0.004}
_GRAD_ACCUM = {1: -0.005, 2: 0.0, 4: -0.008}
_WARMUP = {50: -0.004, 100: 0.0, 150: 0.0, 200: -0.002}
_DROPOUT = {0.0: -0.005, 0.05: 0.0, 0.1: -0.01}
_DIM_BONUS = {64: -0.02, 128: 0.0, 256: -0.01}
_DIM_COST = {64: 0.85, 128: 1.0, 256: 1.35}
DEFAULT_SAMPLE_EVERY = 2  # the bench's and the shipped presets' sample_every_n_epochs


def trial_sample_epochs(flat: Mapping[str, Any]) -> list[int]:
    """The epochs of ``flat``'s run that get sample images (and so a score)."""
    return sample_epochs(int(flat.get("max_train_epochs") or 10),
                         int(flat.get("sample_every_n_epochs") or DEFAULT_SAMPLE_EVERY))


def _gauss(key: str) -> float:
    """A standard normal draw fixed by ``key``: observations are deterministic per seed, config and epoch."""
    return random.Random(hashlib.sha256(key.encode()).digest()).gauss(0.0, 1.0)


@dataclass(frozen=True)
class QuadraticSurface:
    """The original surface: noise-free score of a config at an epoch plus observation noise."""

    seed: int = 0
    noise: float = 0.003
    validation_noise: float = 0.0005
    seconds_per_epoch: float = 1100.0  # one epoch of the Luca set at dim 128 on a 16 GB card
    seconds_per_evaluation: float = 90.0  # sample images + scoring, per evaluated epoch
    peak_epoch_scale: float = 1.0  # > 1: every config learns more slowly (late families)
    slow_learner_bonus: float = 0.0  # score bonus per log2 of slowness (late families: the slow win)

    def _shift(self, name: str) -> float:
        return _gauss(f"{self.seed}:{name}")

    @cached_property
    def optimum(self) -> tuple[float, float, float]:
        """(learning rate, alpha/dim ratio, text-encoder learning rate) where this surface peaks."""
        return (8.5e-5 * math.exp(0.1 * self._shift("lr")), 0.5 + 0.06 * self._shift("ratio"),
                5e-5 * math.exp(0.1 * self._shift("te")))

    def peak(self, flat: Mapping[str, Any]) -> tuple[float, float, bool]:
        """(best score, epoch of the best score, unstable) of a config."""
        choices = TrainingChoices.from_flat_config(flat)
        lr_opt, ratio_opt, te_opt = self.optimum
        score = 0.82
        score -= 0.24 * (math.log2(choices.learning_rate / lr_opt)) ** 2
        score -= 0.48 * (choices.alpha_ratio - ratio_opt) ** 2
        score -= 0.02 * (math.log2(float(flat.get("text_encoder_lr", te_opt)) / te_opt)) ** 2
        score += _DIM_BONUS.get(choices.network_dim, -0.02)
        score += _DROPOUT.get(float(flat.get("network_dropout", 0.05) or 0.0), -0.01)
        score += _SCHEDULER.get(str(flat.get("lr_scheduler", "cosine")), -0.02)
        score += _MIN_SNR.get(int(flat.get("min_snr_gamma", 5) or 0), -0.01)
        score += 0.0 if choices.uses_plain_adamw else -0.006
        score += _GRAD_ACCUM.get(choices.gradient_accumulation_steps, -0.01)
        score += _WARMUP.get(choices.lr_warmup_steps, -0.004)
        speed = (choices.learning_rate / 8.5e-5) * math.sqrt(max(choices.alpha_ratio, 0.05) / 0.5)
        speed /= choices.gradient_accumulation_steps ** 0.3
        score += self.slow_learner_bonus * -math.log2(speed)
        peak_epoch = min(max(14.0 * self.peak_epoch_scale / speed, 5.0), 40.0)
        unstable = not check_constraints(choices).accepted
        if unstable:
            score -= 0.15
        return score, peak_epoch, unstable

    def score(self, flat: Mapping[str, Any], epoch: int) -> float:
        """The noise-free score of ``flat`` at ``epoch``."""
        peak, peak_epoch, unstable = self.peak(flat)
        if unstable:
            peak_epoch = min(peak_epoch, 6.0)  # divergence once the learning rate has fully warmed up
        return self._curve(flat, peak, peak_epoch, unstable, epoch)

    def _curve(self, flat: Mapping[str, Any], peak: float, peak_epoch: float, unstable: bool, epoch: int) -> float:
        if epoch <= peak_epoch:
            return peak - 0.25 * (1.0 - epoch / peak_epoch) ** 2
        return peak - self._overfit(flat, unstable) * ((epoch - peak_epoch) / peak_epoch) ** 2

    @staticmethod
    def _overfit(flat: Mapping[str, Any], unstable: bool) -> float:
        overfit = 0.05 if str(flat.get("lr_scheduler", "")).startswith("cosine") else 0.08
        return overfit * (3.0 if unstable else 1.0)

    def best_sampled_score(self, flat: Mapping[str, Any]) -> float:
        """The noise-free score of the config's best sample epoch (what a perfect run of it reaches)."""
        return max(self.score(flat, epoch) for epoch in trial_sample_epochs(flat))

    def observe(self, flat: Mapping[str, Any], epoch: int) -> float:
        return self.score(flat, epoch) + self.noise * _gauss(f"{self.seed}:{sorted(flat.items())}:{epoch}")

    def validation_loss(self, flat: Mapping[str, Any], epoch: int) -> float:
        """A loss that falls as the score rises: 0.2 - 0.1 * score, plus its own noise."""
        return (0.2 - 0.1 * self.score(flat, epoch)
                + self.validation_noise * _gauss(f"validation:{self.seed}:{sorted(flat.items())}:{epoch}"))

    def epoch_cost(self, flat: Mapping[str, Any]) -> float:
        dim = int(flat.get("network_dim", 128))
        adam_8bit = str(flat.get("optimizer_type", "AdamW")).lower() == "adamw8bit"
        return self.seconds_per_epoch * _DIM_COST.get(dim, 1.0) * (0.93 if adam_8bit else 1.0)


@dataclass(frozen=True)
class NoisySurface(QuadraticSurface):
    """The quadratic shape observed through noise 0.012 (and a validation loss four times noisier)."""

    noise: float = 0.012
    validation_noise: float = 0.002


@dataclass(frozen=True)
class LateLearnerSurface(QuadraticSurface):
    """Saturating curves, peaks 1.7x later, and slow learners score higher (0.015 per halving of speed):
    the winners are still climbing at the epochs where fast learners have already peaked."""

    noise: float = 0.005
    peak_epoch_scale: float = 1.7
    slow_learner_bonus: float = 0.015

    def _curve(self, flat: Mapping[str, Any], peak: float, peak_epoch: float, unstable: bool, epoch: int) -> float:
        # 0.3 * (1 - exp(-3 e / peak)): steep early, nearly flat near the peak (95% of the rise by then).
        if epoch <= peak_epoch:
            return peak - 0.3 * (math.exp(-3.0 * epoch / peak_epoch) - math.exp(-3.0))
        return peak - 0.5 * self._overfit(flat, unstable) * ((epoch - peak_epoch) / peak_epoch) ** 2


@dataclass(frozen=True)
class RestartSurface(LateLearnerSurface):
    """Saturating curves; under ``cosine_with_restarts`` (3 cycles unless ``lr_scheduler_num_cycles``
    says otherwise) each restart drops the score by 0.03, recovered over about two epochs."""

    noise: float = 0.005
    peak_epoch_scale: float = 1.2
    slow_learner_bonus: float = 0.005
    restart_drop: float = 0.03

    def score(self, flat: Mapping[str, Any], epoch: int) -> float:
        base = super().score(flat, epoch)
        if str(flat.get("lr_scheduler", "")) != "cosine_with_restarts":
            return base
        epochs = int(flat.get("max_train_epochs") or 10)
        cycles = int(flat.get("lr_scheduler_num_cycles") or 3)
        drop = 0.0
        for k in range(1, cycles):
            restart = k * epochs / cycles
            if epoch >= restart:
                drop += self.restart_drop * math.exp(-(epoch - restart) / 1.5)
        return base - drop


@dataclass(frozen=True)
class LooseValidationSurface(LateLearnerSurface):
    """Saturating curves whose validation loss measures fit, not quality: it falls with the training
    progress (epoch / peak epoch) whatever the score, bottoms out later than the score peaks, and is
    shifted by dim and dropout, which barely move the score."""

    noise: float = 0.006
    peak_epoch_scale: float = 1.3
    slow_learner_bonus: float = 0.005
    validation_noise: float = 0.003

    def validation_loss(self, flat: Mapping[str, Any], epoch: int) -> float:
        _, peak_epoch, _ = self.peak(flat)
        progress = epoch / (1.4 * peak_epoch)  # the loss keeps falling a while after the score peaked
        fit = 0.04 * math.exp(-2.0 * progress) + 0.01 * max(0.0, progress - 1.0) ** 2
        dim = int(flat.get("network_dim", 128))
        dropout = float(flat.get("network_dropout", 0.05) or 0.0)
        offset = 0.004 * math.log2(dim / 128) * _gauss(f"dim-sign:{self.seed}") - 0.05 * dropout
        return (0.1 + fit + offset
                + self.validation_noise * _gauss(f"validation:{self.seed}:{sorted(flat.items())}:{epoch}"))


SURFACE_FAMILIES: dict[str, type] = {
    "quadratic": QuadraticSurface, "late": LateLearnerSurface, "noisy": NoisySurface,
    "restarts": RestartSurface, "loose": LooseValidationSurface,
}
