"""The runner's tiny project (presets, dataset, the fake sd-scripts, a private tmux server) for queue jobs."""

from __future__ import annotations

import pytest

from orchestrator.runner.gpu_lock import GPU_LOCK_DIR_ENV
from tests.runner.conftest import fake_env, project, tmux_socket  # noqa: F401 - fixtures


@pytest.fixture(autouse=True)
def private_gpu_locks(tmp_path, monkeypatch):
    monkeypatch.setenv(GPU_LOCK_DIR_ENV, str(tmp_path / "gpu_locks"))
