"""Fixtures of the evaluation tests: the tiny real open_clip model and a cache folder."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_encoder():
    from orchestrator.vision import load_clip

    # load_clip quiets open_clip's root-logger narration itself and restores the level after.
    return load_clip("tiny-clip", "random")


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"
