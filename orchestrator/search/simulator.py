"""A stand-in for training + evaluation: a synthetic response surface and a GPU-time cost model.

Used by the tests and ``bench/search_efficiency.py`` at the same seam (:class:`TrialExecutor`) where
``KohyaExecutor`` trains for real, and by ``lora-pipeline search --executor simulated`` to try the
search machinery without a GPU. The surface mimics what the guide reports for a character LoRA:
an optimum learning rate near 8.5e-5, alpha/dim near one half, a peak epoch that comes earlier with a
hotter learning rate, overfitting after it, and runs that break a safety rule diverging.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from orchestrator.common.atomic import atomic_write_json
from orchestrator.search.constraints import TrainingChoices, check_constraints
from orchestrator.search.executor import ReportEpoch, TrialOutcome, TrialRequest, best_epoch_of
from orchestrator.search.merge import flatten_training_tables

PROGRESS_FILE = "simulated_run.json"

_SCHEDULER = {"cosine_with_restarts": 0.0, "cosine": -0.004, "constant": -0.02}
_MIN_SNR = {0: -0.015, 5: 0.0, 10: -0.004}
_GRAD_ACCUM = {1: -0.005, 2: 0.0, 4: -0.008}
_WARMUP = {50: -0.004, 100: 0.0, 150: 0.0, 200: -0.002}
_DROPOUT = {0.0: -0.005, 0.05: 0.0, 0.1: -0.01}
_DIM_COST = {64: 0.85, 128: 1.0, 256: 1.35}


@dataclass(frozen=True)
class ResponseSurface:
    """Noise-free score of a config at an epoch, plus observation noise; ``seed`` moves the optimum."""

    seed: int = 0
    noise: float = 0.003
    seconds_per_epoch: float = 1100.0  # one epoch of the Luca set at dim 128 on a 16 GB card
    seconds_per_evaluation: float = 90.0  # sample images + scoring, per evaluated epoch

    def _shift(self, name: str) -> float:
        digest = hashlib.sha256(f"{self.seed}:{name}".encode()).digest()
        return random.Random(digest).gauss(0.0, 1.0)

    @cached_property
    def optimum(self) -> tuple[float, float, float]:
        """(learning rate, alpha/dim ratio, text-encoder learning rate) where this surface peaks."""
        return (8.5e-5 * math.exp(0.1 * self._shift("lr")), 0.5 + 0.06 * self._shift("ratio"),
                5e-5 * math.exp(0.1 * self._shift("te")))

    def peak(self, flat: Mapping[str, Any]) -> tuple[float, float, bool]:
        """(best score, epoch of the best score, unstable) of a config."""
        choices = TrainingChoices.from_flat_config(flat)
        lr_opt, ratio_opt, te_opt = self.optimum
        dim_bonus = {64: -0.02, 128: 0.0, 256: -0.01}
        score = 0.82
        score -= 0.24 * (math.log2(choices.learning_rate / lr_opt)) ** 2
        score -= 0.48 * (choices.alpha_ratio - ratio_opt) ** 2
        score -= 0.02 * (math.log2(float(flat.get("text_encoder_lr", te_opt)) / te_opt)) ** 2
        score += dim_bonus.get(choices.network_dim, -0.02)
        score += _DROPOUT.get(float(flat.get("network_dropout", 0.05) or 0.0), -0.01)
        score += _SCHEDULER.get(str(flat.get("lr_scheduler", "cosine")), -0.02)
        score += _MIN_SNR.get(int(flat.get("min_snr_gamma", 5) or 0), -0.01)
        score += 0.0 if choices.uses_plain_adamw else -0.006
        score += _GRAD_ACCUM.get(choices.gradient_accumulation_steps, -0.01)
        score += _WARMUP.get(choices.lr_warmup_steps, -0.004)
        speed = (choices.learning_rate / 8.5e-5) * math.sqrt(max(choices.alpha_ratio, 0.05) / 0.5)
        speed /= choices.gradient_accumulation_steps ** 0.3
        peak_epoch = min(max(14.0 / speed, 5.0), 40.0)
        unstable = not check_constraints(choices).accepted
        if unstable:
            score -= 0.15
        return score, peak_epoch, unstable

    def score(self, flat: Mapping[str, Any], epoch: int) -> float:
        return self._curve(flat, *self.peak(flat), epoch)

    def best_sampled_score(self, flat: Mapping[str, Any]) -> float:
        """The noise-free score of the config's best sample epoch (what a perfect run of it reaches)."""
        peak = self.peak(flat)
        return max(self._curve(flat, *peak, epoch) for epoch in sample_epochs(flat))

    def _curve(self, flat: Mapping[str, Any], peak: float, peak_epoch: float, unstable: bool, epoch: int) -> float:
        if unstable:
            # Divergence: the run falls apart once the learning rate has fully warmed up.
            peak_epoch = min(peak_epoch, 6.0)
        if epoch <= peak_epoch:
            return peak - 0.25 * (1.0 - epoch / peak_epoch) ** 2
        overfit = 0.05 if str(flat.get("lr_scheduler", "")).startswith("cosine") else 0.08
        return peak - overfit * ((epoch - peak_epoch) / peak_epoch) ** 2 * (3.0 if unstable else 1.0)

    def observe(self, flat: Mapping[str, Any], epoch: int) -> float:
        key = f"{self.seed}:{sorted(flat.items())}:{epoch}"
        rng = random.Random(hashlib.sha256(key.encode()).digest())
        return self.score(flat, epoch) + rng.gauss(0.0, self.noise)

    def epoch_cost(self, flat: Mapping[str, Any]) -> float:
        dim = int(flat.get("network_dim", 128))
        adam_8bit = str(flat.get("optimizer_type", "AdamW")).lower() == "adamw8bit"
        return self.seconds_per_epoch * _DIM_COST.get(dim, 1.0) * (0.93 if adam_8bit else 1.0)


def sample_epochs(flat: Mapping[str, Any], default_every: int = 2) -> list[int]:
    """The epochs that get sample images (and so a score): every N epochs and always the last."""
    epochs = int(flat.get("max_train_epochs") or 10)
    every = int(flat.get("sample_every_n_epochs") or default_every)
    return sorted({*range(every, epochs + 1, every), epochs})


@dataclass
class SimulatedExecutor:
    """A :class:`TrialExecutor` that trains nothing. ``wall_seconds_per_epoch`` makes it take real time
    (for kill tests); ``trainer_survives`` lets :meth:`adopt` continue a run whose orchestrator died, as
    a trainer living in its own tmux session would; ``crash_trials`` fail at ``crash_epoch``."""

    surface: ResponseSurface = field(default_factory=ResponseSurface)
    wall_seconds_per_epoch: float = 0.0
    trainer_survives: bool = False
    crash_trials: Collection[int] = ()
    crash_epoch: int = 3
    record_progress: bool = True  # the benchmark runs thousands of trials without folders
    stopped_orphans: list[int] = field(default_factory=list)

    def run(self, request: TrialRequest, report: ReportEpoch) -> TrialOutcome:
        return self._train(request, report, start_epoch=1, outcome=TrialOutcome())

    def adopt(self, request: TrialRequest, report: ReportEpoch) -> TrialOutcome | None:
        progress_path = request.directory / PROGRESS_FILE
        if not self.trainer_survives or not progress_path.is_file():
            return None
        import json

        progress = json.loads(progress_path.read_text())
        outcome = TrialOutcome(
            epoch_scores={int(epoch): score for epoch, score in progress["scores"].items()},
            gpu_seconds=float(progress["gpu_seconds"]),
            adopted=True,
        )
        for epoch, score in sorted(outcome.epoch_scores.items()):
            if report(epoch, score):
                outcome.stopped_early = True
                return self._finish(request, outcome)
        if progress["finished"]:
            return self._finish(request, outcome)
        return self._train(request, report, start_epoch=int(progress["epochs_done"]) + 1, outcome=outcome)

    def stop_orphan(self, request: TrialRequest) -> None:
        self.stopped_orphans.append(request.number)

    def _train(self, request: TrialRequest, report: ReportEpoch, *, start_epoch: int,
               outcome: TrialOutcome) -> TrialOutcome:
        flat = {**flatten_training_tables(request.config), **request.params}
        evaluated = set(sample_epochs(flat))
        last_epoch = int(flat.get("max_train_epochs") or 10)
        for epoch in range(start_epoch, last_epoch + 1):
            if self.wall_seconds_per_epoch:
                time.sleep(self.wall_seconds_per_epoch)
            outcome.gpu_seconds += self.surface.epoch_cost(flat)
            if request.number in self.crash_trials and epoch == self.crash_epoch:
                outcome.failure_cause = f"simulated trainer crash at epoch {epoch} (CUDA error: an illegal memory access)"
                self._write_progress(request, outcome, epoch, finished=True)
                return self._finish(request, outcome)
            stop = False
            if epoch in evaluated:
                score = self.surface.observe(flat, epoch)
                outcome.gpu_seconds += self.surface.seconds_per_evaluation
                outcome.epoch_scores[epoch] = score
                self._write_progress(request, outcome, epoch, finished=epoch == last_epoch)
                # A stop asked at the last epoch has nothing left to save: the run simply completes.
                stop = report(epoch, score) and epoch < last_epoch
            else:
                self._write_progress(request, outcome, epoch, finished=epoch == last_epoch)
            if stop:
                outcome.stopped_early = True
                break
        return self._finish(request, outcome)

    def _finish(self, request: TrialRequest, outcome: TrialOutcome) -> TrialOutcome:
        outcome.best_epoch = best_epoch_of(outcome.epoch_scores)
        if outcome.best_epoch is not None:
            outcome.checkpoint = str(request.run_dir / f"simulated-{outcome.best_epoch:06d}.safetensors")
        return outcome

    def _write_progress(self, request: TrialRequest, outcome: TrialOutcome, epoch: int, *,
                        finished: bool) -> None:
        if not self.record_progress:
            return
        atomic_write_json(request.directory / PROGRESS_FILE, {
            "pid": os.getpid(), "epochs_done": epoch, "finished": finished,
            "scores": {str(e): s for e, s in outcome.epoch_scores.items()},
            "gpu_seconds": outcome.gpu_seconds,
        })
