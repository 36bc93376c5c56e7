"""Hyperparameter search: a typed space, seven safety rules, an Optuna study driven trial by trial
through a :class:`TrialExecutor` (real training or the simulator), a results file and an analysis.

The names below are imported on first use, so that ``lora-pipeline --help`` (which imports
``orchestrator.search.cli``) does not load Optuna.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SAFETY_RULES": "constraints", "TrainingChoices": "constraints", "check_constraints": "constraints",
    "TrialExecutor": "executor", "TrialOutcome": "executor", "TrialRequest": "executor",
    "deep_merge": "merge", "merge_trial_config": "merge",
    "ResponseSurface": "surface", "load_surface": "surface", "SimulatedExecutor": "simulator",
    "QuadraticSurface": "surfaces", "SURFACE_FAMILIES": "surfaces",
    "SearchSpace": "space", "load_search_space": "space",
    "Search": "study", "SearchSettings": "study", "SearchSummary": "study", "DEFAULT_STUDY_NAME": "choices",
    "KohyaExecutor": "kohya_executor",
}
# The analysis is `orchestrator.search.analyze.analyze`: a lazy name equal to its module's name would be
# shadowed by the submodule once that is imported.
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'orchestrator.search' has no attribute {name!r}")
    return getattr(importlib.import_module(f"orchestrator.search.{_EXPORTS[name]}"), name)
