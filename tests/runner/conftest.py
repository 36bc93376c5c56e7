"""Fixtures for the runner's tests: a tiny dataset, hand-written kohya TOMLs, the fake sd-scripts,
and a private tmux server per test (never the user's sessions)."""

from __future__ import annotations

import sys
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.common.tomlfile import dumps_toml
from orchestrator.config.paths import ProjectPaths
from orchestrator.kohya.render import RenderedRun
from orchestrator.runner import tmux

FAKE_SD_SCRIPTS = Path(__file__).resolve().parents[1] / "fakes" / "fake_sd_scripts"


@pytest.fixture
def tmux_socket(monkeypatch: pytest.MonkeyPatch):
    if tmux.tmux_binary() is None:
        pytest.skip("tmux is not installed")
    name = f"lp-test-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv(tmux.SOCKET_ENV, name)
    yield name
    tmux.kill_server(name)


def make_dataset(folder: Path, count: int = 4) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.new("RGB", (64, 64), (index * 40, 90, 160)).save(folder / f"frame_{index:03d}.png")
        (folder / f"frame_{index:03d}.txt").write_text("luca, a boy", encoding="utf-8")
    return folder


def make_rendered(root: Path, *, output_name: str = "tiny", epochs: int = 2, run_dir: Path | None = None,
                  image_dir: Path | None = None, extra_training: dict | None = None,
                  dataset_extra: dict | None = None, family: str = "sd15") -> RenderedRun:
    """A RenderedRun written by hand (as ``render_run`` would write it) for the fake sd-scripts."""
    run_dir = run_dir or root / "outputs" / output_name
    image_dir = image_dir or make_dataset(root / "data" / "10_luca")
    config_dir = run_dir / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    prompts = root / "prompts.txt"
    prompts.write_text("luca, a boy --n blurry --w 64 --h 64 --d 1234 --s 2\n", encoding="utf-8")
    model = root / "models" / "sd15-random"
    model.mkdir(parents=True, exist_ok=True)
    sections = {
        "model": {"pretrained_model_name_or_path": str(model)},
        "data": {"dataset_config": str(config_dir / "dataset.toml")},
        "training": {"max_train_epochs": epochs, "seed": 42, "network_dim": 4,
                     **(extra_training or {})},
        "saving": {"output_dir": str(run_dir), "output_name": output_name, "save_model_as": "safetensors",
                   "save_every_n_epochs": 1, "save_state": True},
        "sample": {"sample_prompts": str(prompts), "sample_every_n_epochs": 1},
    }
    dataset = {"general": {"resolution": 64, "caption_extension": ".txt", **(dataset_extra or {})},
               "datasets": [{"batch_size": 1, "subsets": [{"image_dir": str(image_dir), "num_repeats": 1}]}]}
    (config_dir / "training.toml").write_text(dumps_toml(sections), encoding="utf-8")
    (config_dir / "dataset.toml").write_text(dumps_toml(dataset), encoding="utf-8")
    flat = {k: v for table in sections.values() for k, v in table.items()}
    return RenderedRun(run_dir=run_dir, family=family,
                       script_name="sdxl_train_network.py" if family == "sdxl" else "train_network.py",
                       output_name=output_name, config_file=config_dir / "training.toml",
                       dataset_config_file=config_dir / "dataset.toml", training=flat, dataset=dataset,
                       sections=sections, preset_name="handwritten", min_vram_gb=0.0)


@pytest.fixture
def project_paths(tmp_path: Path) -> ProjectPaths:
    return ProjectPaths(root=tmp_path, sd_scripts=FAKE_SD_SCRIPTS, trainer_python=sys.executable,
                        base_model_sd15=str(tmp_path / "models" / "sd15-random"), base_model_sdxl="x/y",
                        tokenizer_cache_dir="", dataset_dir=tmp_path / "data",
                        output_root=tmp_path / "outputs", logs_dir=tmp_path / "logs" / "training",
                        prompts_file=tmp_path / "prompts.txt")


@pytest.fixture
def fake_env(monkeypatch: pytest.MonkeyPatch):
    """Set the fake trainer's failure mode and pace for the processes a test starts."""
    def setter(mode: str = "", step_seconds: float = 0.0, fail_at: int = 2) -> None:
        monkeypatch.setenv("FAKE_SD_SCRIPTS_MODE", mode)
        monkeypatch.setenv("FAKE_SD_SCRIPTS_STEP_SECONDS", str(step_seconds))
        monkeypatch.setenv("FAKE_SD_SCRIPTS_FAIL_AT_STEP", str(fail_at))
    setter()
    return setter


PRESET = """
[preset]
name = "tiny_cli"
family = "sd15"
description = "two tiny epochs for the CLI tests"
min_vram_gb = {vram}

[dataset]
resolution = 64
batch_size = 1
caption_extension = ".txt"

[network]
network_module = "networks.lora"
network_dim = 4
network_alpha = 1.0

[training]
max_train_epochs = 2
seed = 42

[saving]
save_model_as = "safetensors"
save_every_n_epochs = 1
save_state = true

[sample]
sample_every_n_epochs = 1
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tmux_socket: str, fake_env) -> Path:
    (tmp_path / "configs" / "training").mkdir(parents=True)
    for name, vram in (("tiny_cli", 0.0), ("tiny_big", 100000.0)):
        text = PRESET.format(vram=vram).replace('name = "tiny_cli"', f'name = "{name}"')
        (tmp_path / "configs" / "training" / f"{name}.toml").write_text(text, encoding="utf-8")
    make_dataset(tmp_path / "data" / "kohya" / "1_luca")
    (tmp_path / "models" / "sd15").mkdir(parents=True)
    (tmp_path / "prompts.txt").write_text("luca, a boy --d 7\n", encoding="utf-8")
    for key, value in {"HOME": tmp_path, "SD_SCRIPTS": FAKE_SD_SCRIPTS, "TRAINER_PYTHON": sys.executable,
                       "BASE_MODEL_SD15": tmp_path / "models" / "sd15", "PROMPTS_FILE": tmp_path / "prompts.txt",
                       "DATASET_DIR": tmp_path / "data" / "kohya"}.items():
        monkeypatch.setenv(f"LORA_PIPELINE_{key}", str(value))
    monkeypatch.chdir(tmp_path)
    return tmp_path


__all__ = ["FAKE_SD_SCRIPTS", "make_dataset", "make_rendered", "replace"]
