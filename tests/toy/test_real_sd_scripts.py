"""The toy models are accepted by the real sd-scripts: a 2-epoch, 64 px CPU run ends in `model saved.`

The configs are written by hand, like those of the recorded transcript, so that this test proves the
toy models and fixtures alone; rendering is proven by the kohya and runner tests.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image

from orchestrator.toy import ToyDatasetSpec, generate_toy_dataset

pytestmark = pytest.mark.sd_scripts


def _write_kohya_images(tmp_path: Path) -> Path:
    toy = generate_toy_dataset(tmp_path / "toy", ToyDatasetSpec(good=4, black=0, blurred=0, near_duplicates=0,
                                                               other_character=0, corrupt=0, references=0,
                                                               size=64, seed=3))
    image_dir = tmp_path / "data" / "1_hero"
    image_dir.mkdir(parents=True)
    for name in toy.names_of("good"):
        Image.open(toy.frames_dir / name).save(image_dir / name)
        (image_dir / name).with_suffix(".txt").write_text("sks boy, striped shirt", encoding="utf-8")
    return image_dir


def test_train_network_finishes_two_epochs_on_the_random_sd15_model(
    tmp_path: Path, sd_scripts_dir: Path, trainer_python: str, trainer_env: dict[str, str],
    random_sd15_model: Path, clip_tokenizer_cache: Path, sd_scripts_exclusive: None,
) -> None:
    image_dir = _write_kohya_images(tmp_path)
    out_dir = tmp_path / "out"
    (tmp_path / "prompts.txt").write_text("sks boy --w 64 --h 64 --d 1234 --s 2 --l 7.5\n", encoding="utf-8")
    (tmp_path / "dataset.toml").write_text(
        f'[general]\nresolution = 64\nenable_bucket = false\ncaption_extension = ".txt"\n\n'
        f'[[datasets]]\nbatch_size = 1\n\n  [[datasets.subsets]]\n  image_dir = "{image_dir}"\n  num_repeats = 1\n',
        encoding="utf-8",
    )
    (tmp_path / "train.toml").write_text(
        f'pretrained_model_name_or_path = "{random_sd15_model}"\ntokenizer_cache_dir = "{clip_tokenizer_cache}"\n'
        f'dataset_config = "{tmp_path / "dataset.toml"}"\nmax_data_loader_n_workers = 0\ncache_latents = true\n'
        'network_module = "networks.lora"\nnetwork_dim = 4\nnetwork_alpha = 1.0\noptimizer_type = "AdamW"\n'
        'learning_rate = 1e-4\nlr_scheduler = "constant"\nmax_train_epochs = 2\nseed = 42\nmixed_precision = "no"\n'
        f'sdpa = true\noutput_dir = "{out_dir}"\noutput_name = "toy"\nsave_model_as = "safetensors"\n'
        f'save_every_n_epochs = 1\nsample_prompts = "{tmp_path / "prompts.txt"}"\nsample_every_n_epochs = 1\n'
        'sample_sampler = "euler_a"\nconsole_log_simple = true\n',
        encoding="utf-8",
    )
    result = subprocess.run(
        [trainer_python, "train_network.py", "--config_file", str(tmp_path / "train.toml")],
        cwd=sd_scripts_dir, env=trainer_env, capture_output=True, text=True, timeout=540,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "model saved." in log, log[-4000:]
    assert (out_dir / "toy-000001.safetensors").is_file()
    assert (out_dir / "toy.safetensors").is_file()
    samples = sorted(p.name for p in (out_dir / "sample").glob("*.png"))
    assert [name.split("_")[1] for name in samples] == ["e000001", "e000002"], samples
