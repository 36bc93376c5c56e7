from __future__ import annotations

import copy
from pathlib import Path

import pytest

from orchestrator.kohya.placement import UNPLACED_TABLE
from orchestrator.search.merge import deep_merge, flatten_training_tables, merge_trial_config

PROJECT = Path(__file__).resolve().parents[2]


def test_trial_values_land_in_the_table_that_holds_them_and_new_arguments_in_the_renderers_table(
        base_config) -> None:
    merged = merge_trial_config(base_config, {"network_dim": 128, "lr_scheduler": "cosine",
                                              "dataset.num_repeats": 5})
    assert merged["network"]["network_dim"] == 128
    assert merged["network"]["network_module"] == "networks.lora"  # siblings kept
    assert merged[UNPLACED_TABLE]["lr_scheduler"] == "cosine"
    assert merged["dataset"] == {"resolution": 512, "num_repeats": 5}
    assert merged["preset"] == base_config["preset"]


def test_the_base_is_never_mutated_and_trials_do_not_leak_into_each_other(base_config) -> None:
    pristine = copy.deepcopy(base_config)
    first = merge_trial_config(base_config, {"network_dim": 256, "min_snr_gamma": 5})
    first["network"]["network_module"] = "changed by a trial"
    second = merge_trial_config(base_config, {"network_dim": 64})
    assert base_config == pristine
    assert second["network"] == {"network_module": "networks.lora", "network_dim": 64, "network_alpha": 16}
    assert "min_snr_gamma" not in flatten_training_tables(second)


def test_deep_merge_copies_nested_values_it_takes_from_updates() -> None:
    updates = {"a": {"list": [1, 2]}}
    merged = deep_merge({"a": {"x": 1}}, updates)
    merged["a"]["list"].append(3)
    assert updates == {"a": {"list": [1, 2]}} and merged["a"]["x"] == 1


def test_flatten_reads_every_training_table_but_not_dataset_or_preset(base_config) -> None:
    flat = flatten_training_tables(base_config)
    assert flat["network_dim"] == 32 and flat["max_train_epochs"] == 8
    assert "num_repeats" not in flat and "family" not in flat


def test_a_space_parameter_naming_a_dataset_key_goes_where_the_renderer_puts_it(base_config) -> None:
    merged = merge_trial_config(base_config, {"num_repeats": 5, "keep_tokens": 1})
    assert merged["dataset"]["num_repeats"] == 5
    assert "num_repeats" not in flatten_training_tables(merged)  # sd-scripts' trainer has no such argument


def _write_preset(path, tables) -> Path:
    from orchestrator.common.tomlfile import dumps_toml

    path.write_text(dumps_toml(tables))
    return path


@pytest.mark.parametrize("overrides", [
    {"num_repeats": 3}, {"dataset.num_repeats": 4}, {"caption_extension": ".caption"}, {"resolution": 768},
    {"network_dim": 8, "min_snr_gamma": 5.0}, {"keep_tokens": 2, "shuffle_caption": True},
    {"flip_aug": True, "lr_scheduler": "cosine", "dataset.validation_split": 0.1},
])
def test_a_trial_config_renders_exactly_as_the_base_rendered_with_the_overrides(tmp_path, base_config,
                                                                              overrides) -> None:
    """The start checks render the base with the overrides; the trial trains its merged preset: one rule."""
    from orchestrator.config.paths import load_paths
    from orchestrator.kohya.render import render_run

    (tmp_path / "data" / "10_luca").mkdir(parents=True)
    paths = load_paths(PROJECT).with_overrides(dataset_dir=tmp_path / "data", output_root=tmp_path / "out",
                                               base_model_sd15="model", tokenizer_cache_dir="")
    base = _write_preset(tmp_path / "base.toml", base_config)
    trial = _write_preset(tmp_path / "trial.toml", merge_trial_config(base_config, overrides))
    checked = render_run(base, overrides=overrides, paths=paths, run_dir=tmp_path / "run", write=False)
    trained = render_run(trial, paths=paths, run_dir=tmp_path / "run", write=False)
    assert trained.training == checked.training and trained.dataset == checked.dataset


def test_placing_a_trials_overrides_reads_the_shipped_contract_once_per_process(base_config, monkeypatch) -> None:
    """Every key of every trial asks where it belongs (placement.override_table); parsing the shipped
    contract's JSON (~10 ms) for each made the bench's reference and a simulated search take minutes."""
    from orchestrator.kohya import contract

    merge_trial_config(base_config, {"lr_scheduler": "cosine"})  # the first read may parse the files
    reads: list[str] = []
    real_loads = contract.json.loads
    monkeypatch.setattr(contract.json, "loads", lambda text, *a, **k: reads.append("x") or real_loads(text, *a, **k))
    for step in range(50):
        merge_trial_config(base_config, {"lr_scheduler": "cosine", "min_snr_gamma": step, "max_grad_norm": 1.0})
    assert reads == []
    assert contract.recorded_contract() is contract.recorded_contract()
