"""Pytest fixtures for tests that run the real kohya sd-scripts (marker ``sd_scripts``).

Register with ``pytest_plugins = ["tests.sd_scripts_support"]``. Every fixture skips, saying why, when
what it needs is absent, so the same tests pass (skipped) in CI where there is no sd-scripts checkout.

- ``sd_scripts_dir``: ``$LORA_PIPELINE_SD_SCRIPTS``, else the project's ``sd-scripts/`` submodule when it
  holds ``train_network.py``, else the copy of the pinned export that ``scripts/setup.sh`` makes in
  ``.cache/sd-scripts`` (CI).
- ``trainer_python``: ``$LORA_PIPELINE_TRAINER_PYTHON``, else ``.venv-trainer/bin/python``; it must import
  torch and diffusers.
- ``test_model_cache``: ``$LORA_PIPELINE_TEST_CACHE`` (default ``~/.cache/lora-pipeline-tests``), reused
  across sessions because the random SD1.5 model takes ~20 s and 2.1 GB to build.
- ``clip_tokenizer_cache``: a ``tokenizer_cache_dir`` holding ``openai_clip-vit-large-patch14``.
- ``random_sd15_model``: a random-weight SD1.5-architecture diffusers folder.
- ``sdxl_tokenizer_cache``: a ``tokenizer_cache_dir`` holding both SDXL tokenizers (ViT-L and bigG).
- ``random_sdxl_model``: a random-weight SDXL-base-architecture diffusers folder (~6.9 GB, ~5 GB RAM to build).
- ``trainer_env``: the environment a real run needs here (offline hub, unbuffered output).
- ``sd_scripts_exclusive``: holds a machine-wide lock so that real runs of two test sessions never overlap.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from orchestrator.config.paths import default_sd_scripts

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def _cache_lock(cache_dir: Path) -> Iterator[None]:
    # Two pytest sessions (two engineers, or xdist) must not build the 2 GB model at the same time.
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def sd_scripts_dir() -> Path:
    configured = os.environ.get("LORA_PIPELINE_SD_SCRIPTS")
    candidate = Path(configured).expanduser() if configured else PROJECT_ROOT / default_sd_scripts(PROJECT_ROOT)
    if not (candidate / "train_network.py").is_file():
        where = "LORA_PIPELINE_SD_SCRIPTS" if configured else "the sd-scripts/ submodule (not checked out)"
        pytest.skip(f"real sd-scripts not available: no train_network.py in {candidate} ({where}); "
                    "set LORA_PIPELINE_SD_SCRIPTS to a checkout at the pinned commit")
    return candidate.resolve()


@pytest.fixture(scope="session")
def trainer_python() -> str:
    configured = os.environ.get("LORA_PIPELINE_TRAINER_PYTHON")
    python = Path(configured).expanduser() if configured else PROJECT_ROOT / ".venv-trainer" / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no trainer Python at {python}: build .venv-trainer with sd-scripts' requirements "
                    "or set LORA_PIPELINE_TRAINER_PYTHON")
    probe = subprocess.run(
        [str(python), "-c", "import torch, diffusers"], capture_output=True, text=True, timeout=300
    )
    if probe.returncode != 0:
        last_line = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"trainer Python {python} cannot import torch and diffusers: {last_line}")
    return str(python)


@pytest.fixture(scope="session")
def test_model_cache() -> Path:
    configured = os.environ.get("LORA_PIPELINE_TEST_CACHE")
    cache = Path(configured).expanduser() if configured else Path.home() / ".cache" / "lora-pipeline-tests"
    cache.mkdir(parents=True, exist_ok=True)
    return cache


@pytest.fixture(scope="session")
def clip_tokenizer_cache(test_model_cache: Path) -> Path:
    pytest.importorskip("open_clip", reason="open_clip ships the BPE file the CLIP tokenizer is built from")
    from orchestrator.toy import build_clip_tokenizer_dir

    cache = test_model_cache / "tokenizers"
    with _cache_lock(test_model_cache):
        build_clip_tokenizer_dir(cache)
    return cache


@pytest.fixture(scope="session")
def random_sd15_model(test_model_cache: Path, clip_tokenizer_cache: Path) -> Path:
    pytest.importorskip("diffusers", reason="diffusers builds the random SD1.5 model")
    from orchestrator.toy import build_random_sd15

    with _cache_lock(test_model_cache):
        return build_random_sd15(test_model_cache / "sd15-random", tokenizer_cache_dir=clip_tokenizer_cache)


@pytest.fixture(scope="session")
def sdxl_tokenizer_cache(test_model_cache: Path) -> Path:
    pytest.importorskip("open_clip", reason="open_clip ships the BPE file the CLIP tokenizers are built from")
    from orchestrator.toy.random_sdxl import build_sdxl_tokenizer_dirs

    cache = test_model_cache / "tokenizers"
    with _cache_lock(test_model_cache):
        build_sdxl_tokenizer_dirs(cache)
    return cache


@pytest.fixture(scope="session")
def random_sdxl_model(test_model_cache: Path, sdxl_tokenizer_cache: Path) -> Path:
    pytest.importorskip("diffusers", reason="diffusers builds the random SDXL model")
    from orchestrator.toy.random_sdxl import build_random_sdxl

    with _cache_lock(test_model_cache):
        return build_random_sdxl(test_model_cache / "sdxl-random", tokenizer_cache_dir=sdxl_tokenizer_cache)


@pytest.fixture
def trainer_env() -> dict[str, str]:
    """The environment for a real CPU run here: no hub, no GPU, unbuffered output."""
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
                "CUDA_VISIBLE_DEVICES": ""})
    return env


@pytest.fixture
def sd_scripts_exclusive() -> Iterator[None]:
    """Hold a machine-wide lock for a real run: one uses ~7 GB of RAM and both cores for ~40 s,
    so two at once (two test sessions on a shared machine) would only slow each other down or OOM.

    The lock file is our own, not the ``/tmp/sdscripts.lock`` people wrap commands in by hand: a pytest
    started under ``flock /tmp/sdscripts.lock`` must not wait for itself."""
    with open(Path(tempfile.gettempdir()) / "lora-pipeline-real-sd-scripts.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
