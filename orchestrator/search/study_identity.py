"""A study remembers what defines it (space, base config, evaluator); a resume or a worker must match it.

Scores from another search space, base preset or evaluator are not comparable with the study's own, so
the first run stores them and every later process is refused, naming the first setting that differs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import optuna

from orchestrator.common.errors import UserInputError
from orchestrator.search.settings import SearchSettings
from orchestrator.search.vocabulary import (
    BASE_CONFIG_ATTR,
    DATASET_ATTR,
    GPU_HOURS_ATTR,
    OBJECTIVE_ATTR,
    PATIENCE_ATTR,
    PRUNER_ATTR,
    REFERENCES_ATTR,
    SAMPLER_ATTR,
    SCHEDULER_ATTR,
    SEARCH_SPACE_ATTR,
    TARGET_TRIALS_ATTR,
)

_MISSING = "<not set>"


def first_difference(stored: Any, current: Any, prefix: str = "") -> tuple[str, Any, Any] | None:
    """``(dotted key, stored value, current value)`` of the first setting that differs, else None."""
    if isinstance(stored, Mapping) and isinstance(current, Mapping):
        for key in sorted(set(stored) | set(current), key=str):
            found = first_difference(stored.get(key, _MISSING), current.get(key, _MISSING),
                                     f"{prefix}.{key}" if prefix else str(key))
            if found is not None:
                return found
        return None
    return None if stored == current else (prefix or "(value)", stored, current)


def record_or_check_study(study: optuna.Study, settings: SearchSettings, scoring: Any) -> None:
    """Store the study's settings when it is new, else check them; ``scoring`` is the executor's
    ``objective_identity()`` (None when it has none)."""
    stored = study.user_attrs.get(SEARCH_SPACE_ATTR)
    current = settings.space.to_data()
    if stored is None:
        study.set_user_attr(SEARCH_SPACE_ATTR, current)
        study.set_user_attr(BASE_CONFIG_ATTR, dict(settings.base_config))
        if settings.references is not None:
            study.set_user_attr(REFERENCES_ATTR, str(settings.references))
        if settings.dataset is not None:
            study.set_user_attr(DATASET_ATTR, dict(settings.dataset))
    elif stored != current:
        raise UserInputError(
            f"study {settings.study_name!r} was created with a different search space; "
            "resume with the same space file or choose a new --study-name", path=settings.space.source)
    check_objective(study, settings, scoring)
    study.set_user_attr(TARGET_TRIALS_ATTR, settings.trials)
    study.set_user_attr(SAMPLER_ATTR, settings.sampler)
    study.set_user_attr(PRUNER_ATTR, settings.pruner)
    study.set_user_attr(PATIENCE_ATTR, settings.patience)
    study.set_user_attr(SCHEDULER_ATTR, settings.scheduler)
    study.set_user_attr(GPU_HOURS_ATTR, settings.gpu_hours)


def check_objective(study: optuna.Study, settings: SearchSettings, scoring: Any) -> None:
    """The study stores what defines its objective when it is created; a resume or a worker must match it."""
    current = {"base_config": dict(settings.base_config), "scoring": scoring}
    current = json.loads(json.dumps(current))  # as the storage gives it back (tuples become lists)
    stored = study.user_attrs.get(OBJECTIVE_ATTR)
    if stored is None:
        study.set_user_attr(OBJECTIVE_ATTR, current)
        return
    hints = {"base_config": "the same --base-config", "scoring": "the same --evaluation-config and "
             "evaluation model (and --executor)"}
    for part, hint in hints.items():
        if stored.get(part) is None or current[part] is None:
            continue
        difference = first_difference(stored[part], current[part])
        if difference is not None:
            key, before, now = difference
            raise UserInputError(
                f"study {settings.study_name!r} was created with another objective: {part}.{key} is "
                f"{before!r} in the study but {now!r} now; resume with {hint}, or start a new study "
                "with --study-name NEW (and a new --out)", key=f"{part}.{key}")
