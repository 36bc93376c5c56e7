"""A trial's config = the base preset with the trial's values placed where they belong.

The reference implementation copied the base config shallowly, so one trial's values leaked into the
next. Here the base is deep-copied and never mutated, and each flat value is written into the table the
renderer would put it in (``kohya.placement.override_table``: ``[network] network_dim``, ``[dataset]
num_repeats``), so the result is a preset that ``load_preset`` and the renderer accept, and the start
checks (which render the base with the overrides) check the very config each trial trains with.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from orchestrator.config.presets import FAMILIES
from orchestrator.kohya.arguments import NON_ARGUMENT_TABLES, flatten_training_tables
from orchestrator.kohya.placement import DATASET_TABLE, override_table

__all__ = ["deep_merge", "flatten_training_tables", "merge_trial_config", "nest_overrides"]


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
    """Turn flat overrides into preset tables, each where the renderer puts it (:func:`override_table`):
    ``dataset.num_repeats`` and a dataset key such as ``num_repeats`` -> ``[dataset]``; a kohya argument ->
    the table of ``base`` that already holds it, else the renderer's table for new arguments."""
    dataset = base.get(DATASET_TABLE) or {}
    sections = {name: table for name, table in base.items()
                if name not in NON_ARGUMENT_TABLES and isinstance(table, Mapping)}
    family = (base.get("preset") or {}).get("family")
    family = family if family in FAMILIES else FAMILIES[0]  # a base without one is refused elsewhere
    nested: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        table, name = override_table(key, dataset, sections, family=family)
        nested.setdefault(table, {})[name] = value
    return nested


def merge_trial_config(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The full preset of one trial; ``base`` is left exactly as it was."""
    return deep_merge(base, nest_overrides(base, overrides))
