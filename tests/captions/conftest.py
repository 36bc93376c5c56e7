"""Fixtures for the caption stage: a tiny random Qwen2-VL saved once per session, small real images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LUCA_PROFILE = PROJECT_ROOT / "configs" / "characters" / "luca.yaml"
ALBERTO_PROFILE = PROJECT_ROOT / "configs" / "characters" / "alberto.yaml"


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    # Six engineers share two cores: a second OpenMP thread only spins against the neighbours.
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_qwen2_vl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from orchestrator.captions.tiny_model import build_tiny_qwen2_vl

    return build_tiny_qwen2_vl(tmp_path_factory.mktemp("tiny-qwen2-vl"))


@pytest.fixture(scope="session")
def tiny_backend(tiny_qwen2_vl_dir: Path):
    """The tiny model loaded through the production loader; short answers keep the tests fast."""
    from orchestrator.captions.backends import load_qwen_backend

    return load_qwen_backend("qwen2_vl", str(tiny_qwen2_vl_dir), device="cpu", max_new_tokens=12)


@pytest.fixture
def luca_path() -> Path:
    return LUCA_PROFILE


@pytest.fixture
def alberto_path() -> Path:
    return ALBERTO_PROFILE


@pytest.fixture
def luca():
    from orchestrator.captions.profile import load_profile

    return load_profile(LUCA_PROFILE)


def write_images(folder: Path, count: int, *, suffix: str = ".png") -> list[Path]:
    """``count`` distinct small images (different colours and shapes) named frame_000.png..."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        size = (56 + 28 * (index % 3), 56 + 28 * ((index + 1) % 2))
        image = Image.new("RGB", size, ((index * 70) % 256, (index * 130) % 256, (index * 40) % 256))
        path = folder / f"frame_{index:03d}{suffix}"
        image.save(path)
        paths.append(path)
    return paths


@pytest.fixture
def make_images():
    return write_images


@pytest.fixture
def frames(tmp_path: Path) -> Path:
    folder = tmp_path / "frames"
    write_images(folder, 4)
    return folder
