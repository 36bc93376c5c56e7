"""sd-scripts' reading of training arguments, asked of kohya/ by the search and the pre-flight."""

from __future__ import annotations

import pytest

from orchestrator.kohya.arguments import flatten_training_tables, save_plan, training_values
from orchestrator.search.constraints import TrainingChoices


def test_unset_values_take_sd_scripts_defaults_and_unet_lr_wins():
    values = training_values({"learning_rate": 1e-4, "unet_lr": 9e-5})
    assert (values.network_dim, values.network_alpha, values.optimizer_type) == (4, 1.0, "AdamW")
    assert values.learning_rate == 9e-5 and values.gradient_accumulation_steps == 1
    assert training_values({"learning_rate": 2e-4}).learning_rate == 2e-4


def test_search_rules_read_the_same_values_as_kohya():
    flat = {"learning_rate": 1e-4, "network_dim": 64, "network_alpha": 32, "optimizer_type": "AdamW8bit",
            "max_train_epochs": 12, "network_alpha_ratio": 0.5}
    choices = TrainingChoices.from_flat_config(flat)
    values = training_values(flat)
    assert (choices.network_dim, choices.network_alpha, choices.learning_rate, choices.optimizer_type) == (
        values.network_dim, values.network_alpha, values.learning_rate, values.optimizer_type)
    assert choices.alpha_ratio == 0.5


def test_preset_tables_flatten_into_one_namespace_without_our_own_tables():
    preset = {"preset": {"name": "x"}, "dataset": {"num_repeats": 3}, "network": {"network_dim": 8},
              "training": {"max_train_epochs": 4}}
    assert flatten_training_tables(preset) == {"network_dim": 8, "max_train_epochs": 4}


@pytest.mark.parametrize("epochs, every, count", [(10, 2, 5), (10, 3, 4), (10, 0, 1), (1, 5, 1), (7, 7, 1)])
def test_a_checkpoint_every_n_epochs_plus_the_final_one(epochs, every, count):
    plan = save_plan({"max_train_epochs": epochs, "save_every_n_epochs": every, "network_dim": 16})
    assert plan.checkpoints == count and plan.network_dim == 16 and not plan.with_state
    assert save_plan({"save_state": True}).with_state and save_plan({}).network_dim is None
