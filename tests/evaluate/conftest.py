"""Fixtures of the evaluation tests: the tiny real open_clip model and a cache folder."""

from __future__ import annotations

import logging
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_encoder():
    from orchestrator.vision import load_clip

    # Quiet while the model loads, then as before: a root level left at ERROR would hide every later
    # test's warnings (the hostile-input tables assert them).
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.ERROR)
    try:
        return load_clip("tiny-clip", "random")
    finally:
        root.setLevel(previous)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"
