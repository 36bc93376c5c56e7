"""A trial's config = the base preset with the trial's values placed where they belong.

The reference implementation copied the base config shallowly, so one trial's values leaked into the
next. Here the base is deep-copied and never mutated, and a flat kohya argument is written into the
preset table that already holds it (``[network] network_dim``), so the result is still a preset that
``orchestrator.config.presets.load_preset`` and the renderer accept.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from orchestrator.kohya.arguments import NON_ARGUMENT_TABLES, flatten_training_tables

__all__ = ["DEFAULT_TABLE", "deep_merge", "flatten_training_tables", "merge_trial_config", "nest_overrides"]

# Where a key that the base does not set goes (sd-scripts reads all tables as one namespace).
DEFAULT_TABLE = "training"


def deep_merge(base: Mapping[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    """Nested dicts merge key by key; any other value in ``updates`` replaces the base's. Pure."""
    merged = copy.deepcopy(dict(base))
    for key, value in updates.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def nest_overrides(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Turn flat overrides into preset tables: ``dataset.num_repeats`` -> ``[dataset]``; a kohya argument
    -> the table of ``base`` that already holds it, else ``[training]``."""
    nested: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        if key.startswith("dataset."):
            nested.setdefault("dataset", {})[key.removeprefix("dataset.")] = value
            continue
        table = next(
            (name for name, section in base.items()
             if name not in NON_ARGUMENT_TABLES and isinstance(section, Mapping) and key in section),
            DEFAULT_TABLE,
        )
        nested.setdefault(table, {})[key] = value
    return nested


def merge_trial_config(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The full preset of one trial; ``base`` is left exactly as it was."""
    return deep_merge(base, nest_overrides(base, overrides))
