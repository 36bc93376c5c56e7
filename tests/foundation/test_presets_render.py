"""Each preset renders to the reference values, key by key, and the result passes the contract."""

from __future__ import annotations

import pytest

from orchestrator.common.tomlfile import read_toml
from orchestrator.config.presets import load_preset
from orchestrator.kohya.check import validate_rendered
from orchestrator.kohya.render import render_run

SD15_COMMON = {
    "network_module": "networks.lora", "network_dim": 64, "network_alpha": 32.0, "network_dropout": 0.1,
    "optimizer_type": "AdamW8bit", "optimizer_args": ["weight_decay=0.01"], "text_encoder_lr": 4e-5,
    "lr_scheduler": "cosine_with_restarts", "lr_warmup_steps": 100, "gradient_accumulation_steps": 2,
    "min_snr_gamma": 5.0, "noise_offset": 0.05, "save_every_n_epochs": 2, "sample_every_n_epochs": 2,
    "sdpa": True, "xformers": False,
}
EXPECTED_TRAINING = {
    "luca_final_v1_pure": {**SD15_COMMON, "learning_rate": 8e-5, "unet_lr": 8e-5, "max_train_epochs": 20,
                           "lr_scheduler_num_cycles": 2},
    "luca_trial3.6_optimized": {**SD15_COMMON, "learning_rate": 6e-5, "unet_lr": 6e-5, "max_train_epochs": 18,
                                "lr_scheduler_num_cycles": 3},
    "sdxl_16gb_optimized": {
        "network_dim": 128, "network_alpha": 96.0, "optimizer_type": "AdamW8bit", "mixed_precision": "bf16",
        "full_bf16": True, "gradient_checkpointing": True, "cache_latents": True, "vae_batch_size": 1,
        "learning_rate": 1e-4, "unet_lr": 1e-4, "text_encoder_lr": 6e-5, "gradient_accumulation_steps": 8,
        "max_train_epochs": 20, "save_every_n_epochs": 2, "sample_every_n_epochs": 2, "min_snr_gamma": 5.0,
        "noise_offset": 0.05, "lr_scheduler": "cosine_with_restarts", "lr_scheduler_num_cycles": 3,
        "lr_warmup_steps": 100, "sdpa": True, "xformers": False,
    },
}
EXPECTED_GENERAL = {
    "luca_final_v1_pure": {"resolution": 512, "batch_size": 4, "color_aug": False, "flip_aug": False,
                           "caption_extension": ".txt"},
    "luca_trial3.6_optimized": {"resolution": 512, "batch_size": 4, "color_aug": False, "flip_aug": False},
    "sdxl_16gb_optimized": {"resolution": 1024, "batch_size": 1, "enable_bucket": True, "min_bucket_reso": 640,
                            "max_bucket_reso": 1536, "bucket_reso_steps": 64, "bucket_no_upscale": True},
}


@pytest.mark.parametrize("preset", sorted(EXPECTED_TRAINING))
def test_preset_renders_reference_values_key_by_key(preset, machine, tmp_path):
    rendered = render_run(preset, paths=machine, run_dir=tmp_path / "run")
    written = read_toml(rendered.config_file)
    flat = {k: v for table in written.values() for k, v in table.items()}
    for key, expected in EXPECTED_TRAINING[preset].items():
        assert flat[key] == expected, key
        assert type(flat[key]) is type(expected), f"{key}: {type(flat[key]).__name__}"
    dataset = read_toml(rendered.dataset_config_file)
    for key, expected in EXPECTED_GENERAL[preset].items():
        assert dataset["general"][key] == expected, key
    assert validate_rendered(rendered) == []


def test_rendered_files_name_the_machine_paths_from_paths_config(machine, tmp_path):
    rendered = render_run("sdxl_16gb_optimized", paths=machine, run_dir=tmp_path / "run")
    assert rendered.script_name == "sdxl_train_network.py"
    assert rendered.training["pretrained_model_name_or_path"] == machine.base_model_sdxl
    assert rendered.training["output_dir"] == str(tmp_path / "run")
    assert rendered.training["dataset_config"] == str(rendered.dataset_config_file)
    assert rendered.training["sample_prompts"] == str(machine.prompts_file)
    subset = rendered.dataset["datasets"][0]["subsets"][0]
    assert subset == {"image_dir": str(machine.dataset_dir / "10_luca"), "num_repeats": 10}


def test_float_arguments_stay_floats_after_integer_overrides(machine, tmp_path):
    rendered = render_run("luca_final_v1_pure", paths=machine, run_dir=tmp_path / "run",
                          overrides={"network_alpha": 16, "noise_offset": 0, "dataset.validation_split": 0})
    text = rendered.config_file.read_text()
    assert "network_alpha = 16.0" in text and "noise_offset = 0.0" in text
    assert "validation_split = 0.0" in rendered.dataset_config_file.read_text()


def test_overrides_never_mutate_the_preset(machine, tmp_path):
    preset = load_preset("luca_final_v1_pure")
    before = (dict(preset.dataset), {k: dict(v) for k, v in preset.sections.items()})
    render_run(preset, paths=machine, run_dir=tmp_path / "a", overrides={"network_dim": 256, "dataset.resolution": 768})
    second = render_run(preset, paths=machine, run_dir=tmp_path / "b")
    assert (preset.dataset, preset.sections) == before
    assert second.training["network_dim"] == 64 and second.dataset["general"]["resolution"] == 512


def test_preset_asking_for_xformers_is_rendered_with_sdpa_and_a_warning(machine, tmp_path):
    rendered = render_run("luca_final_v1_pure", paths=machine, run_dir=tmp_path / "run",
                          overrides={"xformers": True})
    assert rendered.training["xformers"] is False and rendered.training["sdpa"] is True
    assert any("xformers" in w and "SDPA" in w for w in rendered.warnings)


def test_a_kohya_folder_given_as_image_dir_sets_repeats_from_its_name(machine, tmp_path):
    folder = tmp_path / "elsewhere" / "7_alberto"
    folder.mkdir(parents=True)
    rendered = render_run("luca_final_v1_pure", paths=machine, run_dir=tmp_path / "run",
                          overrides={"dataset.image_dir": str(folder)})
    assert rendered.dataset["datasets"][0]["subsets"] == [{"image_dir": str(folder), "num_repeats": 7}]
