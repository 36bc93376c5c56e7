"""Fixtures for the search tests: the shipped space, a small base preset, a fast simulator."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from orchestrator.search.space import SearchSpace, load_search_space

os.environ.setdefault("HF_HUB_OFFLINE", "1")
PROJECT = Path(__file__).resolve().parents[2]
SPACE_FILE = PROJECT / "configs" / "search" / "luca_tpe_v2_1.toml"


@pytest.fixture
def space() -> SearchSpace:
    return load_search_space(SPACE_FILE)


def small_base_config(epochs: int = 8) -> dict[str, Any]:
    return {
        "preset": {"name": "search_test_base", "family": "sd15"},
        "network": {"network_module": "networks.lora", "network_dim": 32, "network_alpha": 16},
        "optimizer": {"optimizer_type": "AdamW", "learning_rate": 1e-4},
        "training": {"max_train_epochs": epochs, "sample_every_n_epochs": 2, "seed": 42},
        "dataset": {"resolution": 512, "num_repeats": 10},
    }


@pytest.fixture
def base_config() -> dict[str, Any]:
    return small_base_config()


@pytest.fixture
def short_space(space: SearchSpace) -> SearchSpace:
    """The shipped space with epochs cut to {4, 6, 8} so that simulated trials are quick."""
    data = space.to_data()
    data["parameters"]["max_train_epochs"]["choices"] = [4, 6, 8]
    from orchestrator.search.space import parse_search_space

    return parse_search_space(data, source=SPACE_FILE)
