from __future__ import annotations

import copy

from orchestrator.search.merge import deep_merge, flatten_training_tables, merge_trial_config


def test_trial_values_land_in_the_table_that_holds_them_and_new_keys_in_training(base_config) -> None:
    merged = merge_trial_config(base_config, {"network_dim": 128, "lr_scheduler": "cosine",
                                              "dataset.num_repeats": 5})
    assert merged["network"]["network_dim"] == 128
    assert merged["network"]["network_module"] == "networks.lora"  # siblings kept
    assert merged["training"]["lr_scheduler"] == "cosine"
    assert merged["dataset"] == {"resolution": 512, "num_repeats": 5}
    assert merged["preset"] == base_config["preset"]


def test_the_base_is_never_mutated_and_trials_do_not_leak_into_each_other(base_config) -> None:
    pristine = copy.deepcopy(base_config)
    first = merge_trial_config(base_config, {"network_dim": 256, "min_snr_gamma": 5})
    first["network"]["network_module"] = "changed by a trial"
    second = merge_trial_config(base_config, {"network_dim": 64})
    assert base_config == pristine
    assert second["network"] == {"network_module": "networks.lora", "network_dim": 64, "network_alpha": 16}
    assert "min_snr_gamma" not in second["training"]


def test_deep_merge_copies_nested_values_it_takes_from_updates() -> None:
    updates = {"a": {"list": [1, 2]}}
    merged = deep_merge({"a": {"x": 1}}, updates)
    merged["a"]["list"].append(3)
    assert updates == {"a": {"list": [1, 2]}} and merged["a"]["x"] == 1


def test_flatten_reads_every_training_table_but_not_dataset_or_preset(base_config) -> None:
    flat = flatten_training_tables(base_config)
    assert flat["network_dim"] == 32 and flat["max_train_epochs"] == 8
    assert "num_repeats" not in flat and "family" not in flat
