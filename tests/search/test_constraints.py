from __future__ import annotations

from dataclasses import replace

import pytest

from orchestrator.search.constraints import RULE_NAMES, TrainingChoices, check_constraints

SAFE = TrainingChoices(learning_rate=9e-5, optimizer_type="AdamW", network_dim=128, network_alpha=64,
                       max_train_epochs=16, lr_warmup_steps=100, gradient_accumulation_steps=2)


def failed(choices: TrainingChoices) -> list[str]:
    return check_constraints(choices).failed_names


def test_the_safe_baseline_passes_every_rule() -> None:
    verdict = check_constraints(SAFE)
    assert verdict.accepted and verdict.reason == ""
    assert verdict.constraint_values() == dict.fromkeys(RULE_NAMES, 0.0)


def test_rule_1_high_lr_with_8bit_adam() -> None:
    assert failed(replace(SAFE, learning_rate=1.3e-4, optimizer_type="AdamW8bit", lr_warmup_steps=200,
                          gradient_accumulation_steps=4)) == ["high_lr_with_8bit_adam"]
    assert failed(replace(SAFE, learning_rate=1.2e-4, optimizer_type="AdamW8bit", lr_warmup_steps=200,
                          gradient_accumulation_steps=4)) == []


def test_rule_2_alpha_equal_to_dim() -> None:
    assert "alpha_equals_dim" in failed(replace(SAFE, network_alpha=127.5))
    assert "alpha_equals_dim" not in failed(replace(SAFE, network_alpha=127))


def test_rule_3_large_dim_needs_sixteen_epochs() -> None:
    assert failed(replace(SAFE, network_dim=256, network_alpha=128, max_train_epochs=12)) == ["large_dim_few_epochs"]
    assert failed(replace(SAFE, network_dim=256, network_alpha=128, max_train_epochs=16)) == []


def test_rule_4_high_lr_needs_warmup() -> None:
    assert failed(replace(SAFE, learning_rate=1.05e-4, lr_warmup_steps=50)) == ["high_lr_short_warmup"]
    assert failed(replace(SAFE, learning_rate=1.0e-4, lr_warmup_steps=50)) == []


def test_rule_5_high_lr_needs_accumulation() -> None:
    assert failed(replace(SAFE, learning_rate=1.15e-4, gradient_accumulation_steps=1)) == [
        "high_lr_without_accumulation"]
    assert failed(replace(SAFE, learning_rate=1.1e-4, gradient_accumulation_steps=1)) == []


@pytest.mark.parametrize("unstabilise", [
    {"max_train_epochs": 12}, {"gradient_accumulation_steps": 1}, {"optimizer_type": "AdamW8bit"},
    {"lr_warmup_steps": 100},
])
def test_rule_6_high_alpha_ratio_needs_every_stabiliser(unstabilise: dict) -> None:
    stabilised = replace(SAFE, network_alpha=96, lr_warmup_steps=150)  # ratio 0.75
    assert failed(stabilised) == []
    assert failed(replace(stabilised, **unstabilise)) == ["high_alpha_ratio_unstabilised"]
    assert failed(replace(stabilised, network_alpha=95, **unstabilise)) == []  # ratio 0.742


def test_rule_7_very_high_alpha_ratio_with_high_lr_uses_the_sampled_ratio() -> None:
    stabilised = replace(SAFE, lr_warmup_steps=150, network_alpha=108, network_alpha_ratio=0.85)
    assert failed(replace(stabilised, learning_rate=1.05e-4)) == ["very_high_alpha_ratio_with_high_lr"]
    assert failed(replace(stabilised, learning_rate=1.0e-4)) == []
    # int(128 x 0.85) = 108 reads back as 0.84: without the sampled ratio the rule would not fire.
    assert failed(replace(stabilised, network_alpha_ratio=None, learning_rate=1.05e-4)) == []


def test_the_reason_lists_every_failed_rule() -> None:
    bad = TrainingChoices(learning_rate=1.3e-4, optimizer_type="AdamW8bit", network_dim=256,
                          network_alpha=256, max_train_epochs=12, lr_warmup_steps=50,
                          gradient_accumulation_steps=1)
    verdict = check_constraints(bad)
    assert verdict.failed_names == list(RULE_NAMES)
    assert verdict.reason.startswith("rejected by 7 safety rules: ")
    for name in RULE_NAMES:
        assert name in verdict.reason
    assert verdict.constraint_values() == dict.fromkeys(RULE_NAMES, 1.0)


def test_choices_are_read_from_kohya_names_with_unet_lr_first() -> None:
    choices = TrainingChoices.from_flat_config({"learning_rate": 1e-4, "unet_lr": 9e-5, "network_dim": 64,
                                                "network_alpha": 32, "optimizer_type": "AdamW8bit"})
    assert choices.learning_rate == 9e-5 and choices.alpha_ratio == 0.5 and choices.uses_8bit_adam


def test_flow_families_are_checked_by_their_own_rules_not_the_sd15_seven() -> None:
    from orchestrator.search.constraints import FLOW_SAFETY_RULES

    # An SD1.5 rule would reject this (alpha == dim); a FLUX.1 LoRA is not judged by it.
    flux = {"network_module": "networks.lora_flux", "network_dim": 16, "network_alpha": 16.0,
            "learning_rate": 4e-4, "optimizer_type": "AdamW8bit", "max_train_epochs": 8}
    verdict = check_constraints(TrainingChoices.from_flat_config(flux))
    assert verdict.accepted and set(verdict.constraint_values()) == {r.name for r in FLOW_SAFETY_RULES}
    bad = {**flux, "blocks_to_swap": 36, "cpu_offload_checkpointing": True, "discrete_flow_shift": 3.5,
           "timestep_sampling": "flux_shift", "cache_text_encoder_outputs_to_disk": True, "dataset.shuffle_caption": True}
    assert check_constraints(TrainingChoices.from_flat_config(bad)).failed_names == [
        "swap_with_cpu_offload", "flux_swap_beyond_35", "flow_shift_ignored", "cached_text_encoders_with_varying_captions"]
    sd3 = {**bad, "network_module": "networks.lora_sd3"}  # FLUX-only rules stay quiet for SD3.5
    assert check_constraints(TrainingChoices.from_flat_config(sd3)).failed_names == [
        "swap_with_cpu_offload", "cached_text_encoders_with_varying_captions"]


def test_the_flux_search_space_loads_and_its_warm_start_preset_passes_its_rules() -> None:
    from pathlib import Path

    from orchestrator.config.presets import load_preset
    from orchestrator.kohya.arguments import flatten_training_tables
    from orchestrator.search.space import load_search_space

    root = Path(__file__).resolve().parents[2]
    space = load_search_space(root / "configs" / "search" / "flux1_character.toml")
    assert "timestep_sampling" in {p.name for p in space.parameters}
    preset = load_preset("flux1_dev_24gb", root)
    verdict = check_constraints(TrainingChoices.from_flat_config(flatten_training_tables(preset.sections)))
    assert verdict.accepted and verdict.rules[0].name == "swap_with_cpu_offload"
