"""The runner driving the REAL sd-scripts train_network.py on CPU (random-weight SD1.5, 64 px, 2 epochs).

Skipped, saying why, without an sd-scripts checkout, the trainer Python or the test model cache
(``tests/sd_scripts_support.py``). About 45 s and 7 GB RAM per run on 2 CPU cores.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.common.tomlfile import dumps_toml
from orchestrator.config.paths import ProjectPaths
from orchestrator.kohya.render import RenderedRun
from orchestrator.runner.launch import start_training
from tests.runner.conftest import make_dataset

pytestmark = [pytest.mark.sd_scripts, pytest.mark.slow, pytest.mark.timeout(600)]


def real_rendered(root: Path, model: Path, tokenizers: Path, *, epochs: int) -> RenderedRun:
    """The transcripts' RUN A configuration (what the contract was recorded with)."""
    run_dir = root / "out put"  # a space: the real trainer gets its paths verbatim too
    config_dir = run_dir / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    image_dir = root / "data" / "1_img"
    if not image_dir.is_dir():
        make_dataset(image_dir, count=3)
    prompts = root / "prompts.txt"
    prompts.write_text("sks a red square --n blurry --w 64 --h 64 --d 1234 --s 2 --l 7.5\n", encoding="utf-8")
    sections = {
        "model": {"pretrained_model_name_or_path": str(model), "tokenizer_cache_dir": str(tokenizers)},
        "dataset": {"dataset_config": str(config_dir / "dataset.toml"), "max_data_loader_n_workers": 0,
                    "cache_latents": True},
        "network": {"network_module": "networks.lora", "network_dim": 4, "network_alpha": 1.0},
        "optimizer": {"optimizer_type": "AdamW", "learning_rate": 1e-4, "lr_scheduler": "constant"},
        "training": {"max_train_epochs": epochs, "seed": 42, "mixed_precision": "no", "sdpa": True,
                     "xformers": False},
        "saving": {"output_dir": str(run_dir), "output_name": "tiny", "save_model_as": "safetensors",
                   "save_every_n_epochs": 1, "save_state": True},
        "sample": {"sample_prompts": str(prompts), "sample_every_n_epochs": 1, "sample_sampler": "euler_a"},
    }
    dataset = {"general": {"resolution": 64, "enable_bucket": False, "caption_extension": ".txt",
                           "shuffle_caption": False},
               "datasets": [{"batch_size": 1, "subsets": [{"image_dir": str(image_dir), "num_repeats": 1,
                                                           "class_tokens": "sks thing"}]}]}
    (config_dir / "training.toml").write_text(dumps_toml(sections), encoding="utf-8")
    (config_dir / "dataset.toml").write_text(dumps_toml(dataset), encoding="utf-8")
    flat = {k: v for table in sections.values() for k, v in table.items()}
    return RenderedRun(run_dir=run_dir, family="sd15", script_name="train_network.py", output_name="tiny",
                       config_file=config_dir / "training.toml", dataset_config_file=config_dir / "dataset.toml",
                       training=flat, dataset=dataset, sections=sections, preset_name="real_cpu", min_vram_gb=0.0)


@pytest.fixture
def real_paths(tmp_path, sd_scripts_dir, trainer_python, random_sd15_model, clip_tokenizer_cache, trainer_env,
               monkeypatch, tmux_socket) -> ProjectPaths:
    for key, value in trainer_env.items():  # the tmux server (started by this test) passes them on
        monkeypatch.setenv(key, value)
    return ProjectPaths(root=tmp_path, sd_scripts=sd_scripts_dir, trainer_python=trainer_python,
                        base_model_sd15=str(random_sd15_model), base_model_sdxl="", tokenizer_cache_dir=str(
                            clip_tokenizer_cache), dataset_dir=tmp_path / "data", output_root=tmp_path,
                        logs_dir=tmp_path / "logs", prompts_file=tmp_path / "prompts.txt")


def test_real_cpu_run_then_resume(tmp_path, real_paths, random_sd15_model, clip_tokenizer_cache):
    rendered = real_rendered(tmp_path, random_sd15_model, clip_tokenizer_cache, epochs=2)
    record = start_training(rendered, paths=real_paths, allow_cpu=True).follow(poll_seconds=0.5)
    assert record.status == "succeeded", (record.failure, record.log_path)
    assert record.summary["total_steps"] == 6 and record.summary["images_x_repeats"] == 3
    assert [loss["step"] for loss in record.losses] == [1, 2, 3, 4, 5, 6]
    assert all(loss["avr_loss"] > 0 and loss["s_per_it"] > 0 for loss in record.losses)
    assert record.checkpoints == {"1": str(rendered.run_dir / "tiny-000001.safetensors"),
                                  "2": str(rendered.run_dir / "tiny.safetensors")}
    assert all(Path(path).stat().st_size > 0 for path in record.checkpoints.values())
    assert sorted(record.samples) == ["1", "2"]
    assert [e["epoch"] for e in record.epochs] == [1, 2] and all(e["wall_seconds"] for e in record.epochs)

    longer = real_rendered(tmp_path, random_sd15_model, clip_tokenizer_cache, epochs=3)
    resumed = start_training(longer, paths=real_paths, allow_cpu=True, resume=True).follow(poll_seconds=0.5)
    assert resumed.status == "succeeded", (resumed.failure, resumed.log_path)
    assert resumed.step_offset == 6
    assert [loss["step"] for loss in resumed.losses] == list(range(1, 10))
    assert [e["epoch"] for e in resumed.epochs] == [1, 2, 3]
    state = json.loads((longer.run_dir / "tiny-state" / "train_state.json").read_text())
    assert state["current_epoch"] == 3
