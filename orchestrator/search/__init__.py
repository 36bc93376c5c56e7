"""Hyperparameter search: a typed space, seven safety rules, an Optuna study driven trial by trial
through a :class:`TrialExecutor` (real training or the simulator), a results file and an analysis."""

from orchestrator.search.constraints import SAFETY_RULES, TrainingChoices, check_constraints
from orchestrator.search.executor import TrialExecutor, TrialOutcome, TrialRequest
from orchestrator.search.merge import deep_merge, merge_trial_config
from orchestrator.search.simulator import ResponseSurface, SimulatedExecutor
from orchestrator.search.space import SearchSpace, load_search_space
from orchestrator.search.study import Search, SearchSettings, SearchSummary

__all__ = [
    "SAFETY_RULES",
    "ResponseSurface",
    "Search",
    "SearchSettings",
    "SearchSpace",
    "SearchSummary",
    "SimulatedExecutor",
    "TrainingChoices",
    "TrialExecutor",
    "TrialOutcome",
    "TrialRequest",
    "check_constraints",
    "deep_merge",
    "load_search_space",
    "merge_trial_config",
]
