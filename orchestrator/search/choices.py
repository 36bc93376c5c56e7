"""The search's named choices and defaults, in one light module: the study uses them, and the command line
offers them without importing Optuna (so ``lora-pipeline --help`` stays instant)."""

from __future__ import annotations

from typing import Literal, get_args

SamplerKind = Literal["tpe", "random"]
PrunerKind = Literal["catchup", "median", "hyperband", "none"]
SAMPLER_KINDS: tuple[str, ...] = get_args(SamplerKind)
PRUNER_KINDS: tuple[str, ...] = get_args(PrunerKind)
DEFAULT_SAMPLER: SamplerKind = "tpe"
DEFAULT_PRUNER: PrunerKind = "catchup"
DEFAULT_STUDY_NAME = "lora_hyperparameter_search"
SchedulerKind = Literal["pause", "first-epoch", "none"]
SCHEDULER_KINDS: tuple[str, ...] = get_args(SchedulerKind)
# What `lora-pipeline search` runs (scheduler.py). The rule: if the plain first-epoch rule beats the
# model-ranked "pause", the simpler rule ships; on the bench it did (quadratic seeds 0-2: 44% of the guide's
# GPU-hours to target against "pause" reaching it on 1 of 3 seeds within 400 GPU-hours).
DEFAULT_SCHEDULER: SchedulerKind = "first-epoch"
