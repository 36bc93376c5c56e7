from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config.paths import ProjectPaths, load_paths

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def machine(tmp_path: Path) -> ProjectPaths:
    """Project paths whose model, dataset and prompt file all exist, under tmp_path."""
    dataset = tmp_path / "data"
    (dataset / "10_luca").mkdir(parents=True)
    model = tmp_path / "models" / "sd15.safetensors"
    model.parent.mkdir()
    model.write_bytes(b"not a real model")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("luca, smiling --w 512 --h 512 --d 1\n")
    return load_paths(PROJECT_ROOT).with_overrides(
        dataset_dir=dataset, output_root=tmp_path / "outputs", prompts_file=prompts,
        base_model_sd15=str(model), base_model_sdxl=str(model), tokenizer_cache_dir="",
    )
