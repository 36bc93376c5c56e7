"""``lora-pipeline train`` then ``evaluate`` on the REAL sd-scripts with a random-weight SDXL-base model on CPU.

64 px, 2 epochs, the contract transcript's SDXL settings (UNet only, text-encoder outputs cached). Skipped,
saying why, without an sd-scripts checkout, the trainer Python or the test model cache
(``tests/sd_scripts_support.py``). About 16 GB of RAM and a few minutes on 2 CPU cores; the first session
also builds the ~6.9 GB model (cached in the test model cache).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.toy import ToyDatasetSpec, generate_toy_dataset

pytestmark = [
    pytest.mark.sd_scripts, pytest.mark.slow, pytest.mark.timeout(1800),
    # Opt-in until it has passed on a quiet machine: its only runs so far were OOM-killed beside other
    # real runs (16 GB of 24). Set LORA_PIPELINE_SDXL_TESTS=1 to run it.
    pytest.mark.skipif(os.environ.get("LORA_PIPELINE_SDXL_TESTS") != "1",
                       reason="real SDXL test is opt-in: set LORA_PIPELINE_SDXL_TESTS=1 (needs ~16 GB free RAM)"),
]

OUTPUT_NAME = "tinyxl"
PRESET = f"""
[preset]
name = "real_cpu_sdxl"
family = "sdxl"
description = "real sd-scripts SDXL on CPU: 64 px, 2 epochs"
min_vram_gb = 0.0

[dataset]
resolution = 64
batch_size = 1
enable_bucket = false
caption_extension = ".txt"
shuffle_caption = false

[network]
network_module = "networks.lora"
network_dim = 4
network_alpha = 1.0

[optimizer]
optimizer_type = "AdamW"
learning_rate = 1e-4
lr_scheduler = "constant"

[training]
max_train_epochs = 2
seed = 42
mixed_precision = "no"
cache_latents = true
max_data_loader_n_workers = 0
network_train_unet_only = true
cache_text_encoder_outputs = true

[saving]
output_name = "{OUTPUT_NAME}"
save_model_as = "safetensors"
save_every_n_epochs = 1
save_state = false

[sample]
sample_every_n_epochs = 1
sample_sampler = "euler_a"
"""


def _toy_kohya_dataset(root: Path) -> Path:
    """Three toy frames with captions in ``root/kohya/1_hero``, and the toy's references; returns the refs."""
    toy = generate_toy_dataset(root / "toy", ToyDatasetSpec(good=3, black=0, blurred=0, near_duplicates=0,
                                                             other_character=0, corrupt=0, references=2,
                                                             size=64))
    subset = root / "kohya" / "1_hero"
    subset.mkdir(parents=True)
    for index, name in enumerate(toy.names_of("good")):
        (subset / name).write_bytes((toy.frames_dir / name).read_bytes())
        (subset / name).with_suffix(".txt").write_text(f"sks hero, toy character, view {index}\n", encoding="utf-8")
    return toy.references_dir


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=1500)


def test_real_sdxl_train_then_evaluate(tmp_path, sd_scripts_dir, trainer_python, random_sdxl_model,
                                       sdxl_tokenizer_cache, trainer_env, tmux_socket, sd_scripts_exclusive):
    references = _toy_kohya_dataset(tmp_path)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("sks hero, toy character --n blurry --w 64 --h 64 --d 1234 --s 2 --l 7.5\n", encoding="utf-8")
    preset = tmp_path / "real_cpu_sdxl.toml"
    preset.write_text(PRESET, encoding="utf-8")
    run_dir = tmp_path / "run xl"  # a space: paths reach the trainer verbatim
    env = {**trainer_env, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
           "LORA_PIPELINE_HOME": str(tmp_path), "LORA_PIPELINE_TMUX_SOCKET": tmux_socket,
           "LORA_PIPELINE_SD_SCRIPTS": str(sd_scripts_dir), "LORA_PIPELINE_TRAINER_PYTHON": trainer_python,
           "LORA_PIPELINE_BASE_MODEL_SDXL": str(random_sdxl_model),
           "LORA_PIPELINE_TOKENIZER_CACHE_DIR": str(sdxl_tokenizer_cache),
           "LORA_PIPELINE_DATASET_DIR": str(tmp_path / "kohya"), "LORA_PIPELINE_OUTPUT_ROOT": str(tmp_path),
           "LORA_PIPELINE_LOGS_DIR": str(tmp_path / "logs"), "LORA_PIPELINE_PROMPTS_FILE": str(prompts)}

    train = _cli(["train", str(preset), "--out", str(run_dir), "--allow-cpu", "--wait"], env, tmp_path)
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert train.returncode == 0 and record["status"] == "succeeded", (train.stdout[-3000:], train.stderr[-3000:],
                                                                       record.get("failure"))
    assert any(Path(arg).name == "sdxl_train_network.py" for arg in record["argv"]), record["argv"]
    assert record["checkpoints"] == {"1": str(run_dir / f"{OUTPUT_NAME}-000001.safetensors"),
                                     "2": str(run_dir / f"{OUTPUT_NAME}.safetensors")}
    assert all(Path(path).stat().st_size > 0 for path in record["checkpoints"].values())
    # "0": the base model's images (the render turns sample_at_first on: they are the calibration's floor).
    assert sorted(record["samples"]) == ["0", "1", "2"]
    assert all(Path(path).is_file() for paths in record["samples"].values() for path in paths)
    assert [loss["step"] for loss in record["losses"]] == list(range(1, 7))

    evaluate = _cli(["evaluate", str(run_dir), "--references", str(references), "--clip-model", "tiny-clip",
                     "--clip-weights", "random", "--cache-dir", str(tmp_path / "embeddings")], env, tmp_path)
    assert evaluate.returncode == 0, (evaluate.stdout[-3000:], evaluate.stderr[-3000:])
    scores = json.loads((run_dir / "evaluation" / "scores.json").read_text(encoding="utf-8"))
    best = json.loads((run_dir / "evaluation" / "best.json").read_text(encoding="utf-8"))
    assert sorted(scores["epochs"]) == ["1", "2"] and not scores["fatal"]
    assert best["epoch"] in (1, 2), best
    chosen = scores["epochs"][str(best["epoch"])]
    assert best["total"] == pytest.approx(chosen["total"])
    assert best["total"] == pytest.approx(max(epoch["total"] for epoch in scores["epochs"].values()))
    assert best["checkpoint"] == record["checkpoints"][str(best["epoch"])]
    assert (run_dir / "report.html").is_file()
