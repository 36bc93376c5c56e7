"""Where one override of a preset goes: the one rule for ``--set`` (the renderer) and the search's trials.

sd-scripts reads two files: the dataset config (our ``[dataset]`` table) and the training config (every
other table, as one namespace). A key can therefore be right in one and unknown to the other; the search
once put a space parameter naming a dataset key (``num_repeats``) into ``[training]`` while the renderer
put it into ``[dataset]``, so the start checks passed and the first trial failed its pre-flight. Both now
ask :func:`override_table`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.kohya.checkout import TRAINING_SCRIPTS
from orchestrator.kohya.contract import Contract, recorded_contract

DATASET_PREFIX = "dataset."  # ``--set dataset.num_repeats=5``: always the dataset config
DATASET_TABLE = "dataset"
UNPLACED_TABLE = "overrides"  # a training argument no table of the preset holds yet


def override_table(key: str, dataset: Mapping[str, Any], sections: Mapping[str, Mapping[str, Any]], *,
                   family: str, contract: Contract | None = None) -> tuple[str, str]:
    """``(table, name)``: the preset table an override ``key`` belongs in and its name there.

    ``dataset.X`` and a key the ``[dataset]`` table already holds go to ``[dataset]``; a key another table
    holds stays in that table; a key sd-scripts' dataset config knows and its training script does not
    (``num_repeats``, ``caption_extension``) goes to ``[dataset]``; anything else is a training argument
    (:data:`UNPLACED_TABLE`)."""
    if key.startswith(DATASET_PREFIX):
        return DATASET_TABLE, key.removeprefix(DATASET_PREFIX)
    if key in dataset:
        return DATASET_TABLE, key
    for name, table in sections.items():
        if key in table:
            return name, key
    contract = contract or recorded_contract()
    schema = contract.dataset_schema
    if key not in contract.arguments_of(TRAINING_SCRIPTS[family]) and (key in schema.general or key in schema.subset):
        return DATASET_TABLE, key
    return UNPLACED_TABLE, key
