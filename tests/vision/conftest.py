from __future__ import annotations

import logging
import os
from pathlib import Path

# Before anything imports huggingface_hub: tests never touch the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_encoder():
    """The real open_clip code path with the registered tiny architecture and seeded random weights."""
    from orchestrator.vision import load_clip

    logging.getLogger().setLevel(logging.ERROR)  # open_clip logs "initialized randomly" on the root logger
    return load_clip("tiny-clip", "random")


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory) -> tuple[Path, dict[str, str | None]]:
    from orchestrator.vision.synthetic import write_bad_inputs

    folder = tmp_path_factory.mktemp("bad_inputs")
    return folder, write_bad_inputs(folder)
