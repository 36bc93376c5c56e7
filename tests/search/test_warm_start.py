"""Warm start: reference presets expressed as search parameters, enqueued once, checked by the rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from optuna.trial import TrialState

from orchestrator.common.errors import UserInputError
from orchestrator.config.presets import read_toml
from orchestrator.search.merge import flatten_training_tables
from orchestrator.search.results import RESULTS_FILE
from orchestrator.search.simulator import SimulatedExecutor
from orchestrator.search.space import parse_search_space
from orchestrator.search.study import Search, SearchSettings
from orchestrator.search.warm_start import WarmStartPoint, express_in_space, load_warm_start, plan_warm_start

from .conftest import PROJECT, SPACE_FILE

PRESETS = PROJECT / "configs" / "training"


def preset(name: str) -> dict:
    return read_toml(PRESETS / f"{name}.toml")


def test_the_reference_preset_is_expressed_as_the_spaces_parameters(space) -> None:
    params, problems = express_in_space(space, flatten_training_tables(preset("luca_final_v1_pure")))
    assert problems == []
    assert params == {
        "network_dim": 64, "network_alpha_ratio": 0.5, "network_dropout": 0.1, "learning_rate": 8e-5,
        "text_encoder_lr": 4e-5, "lr_scheduler": "cosine_with_restarts", "max_train_epochs": 20,
        "min_snr_gamma": 5, "optimizer_type": "AdamW8bit", "gradient_accumulation_steps": 2, "lr_warmup_steps": 100,
    }
    # The parameters give back the preset's own kohya arguments (alpha 32 = int(64 x 0.5), unet_lr = lr).
    overrides = space.training_overrides(params)
    assert overrides["network_alpha"] == 32 and overrides["unet_lr"] == 8e-5
    assert type(params["min_snr_gamma"]) is int  # the choice itself, not the preset's 5.0


def test_a_helper_is_the_grid_value_that_reproduces_the_presets_derived_argument(space) -> None:
    flat = {**flatten_training_tables(preset("luca_final_v1_pure")), "network_dim": 128, "network_alpha": 108}
    params, problems = express_in_space(space, flat)
    assert problems == [] and params["network_alpha_ratio"] == 0.85  # int(128 x 0.85) = 108, 108/128 = 0.84375


@pytest.mark.parametrize(("change", "expected"), [
    ({"max_train_epochs": 18}, "max_train_epochs = 18 is not one of [12, 16, 20, 24]"),
    ({"learning_rate": 2e-4, "unet_lr": 2e-4}, "learning_rate = 0.0002 is outside [6e-05, 0.00012]"),
    ({"network_alpha": 33}, "no network_alpha_ratio in the space gives network_alpha = 33"),
    ({"unet_lr": 1e-4}, "unet_lr = 0.0001 is not what the space derives (8e-05)"),
])
def test_a_value_the_space_cannot_take_is_named_never_bent_into_the_space(space, change, expected) -> None:
    flat = {**flatten_training_tables(preset("luca_final_v1_pure")), **change}
    _, problems = express_in_space(space, flat)
    assert expected in problems


def test_the_plan_skips_presets_outside_the_space_and_drops_duplicates(space) -> None:
    final = preset("luca_final_v1_pure")
    plan = plan_warm_start(space, [("base", final), ("luca_trial3.6_optimized", preset("luca_trial3.6_optimized")),
                                   ("luca_final_v1_pure", final)])
    assert [point.name for point in plan.points] == ["base"]
    assert len(plan.notes) == 1 and "luca_trial3.6_optimized" in plan.notes[0] and "max_train_epochs = 18" in plan.notes[0]


def test_the_shipped_space_names_its_warm_start_presets_outside_the_stored_space(space) -> None:
    assert space.warm_start_presets == ("luca_final_v1_pure",)
    assert "warm_start" not in space.to_data()  # studies created before warm start still resume
    plan = load_warm_start(space, PROJECT)
    assert [point.name for point in plan.points] == ["luca_final_v1_pure"] and plan.notes == []
    with pytest.raises(UserInputError) as error:
        parse_search_space({**space.to_data(), "warm_start": {"presets": "luca_final_v1_pure"}}, source=SPACE_FILE)
    assert error.value.key == "warm_start.presets"


def _settings(space, base, output: Path, points: tuple[WarmStartPoint, ...], **changes) -> SearchSettings:
    values = {"space": space, "base_config": base, "output": output, "trials": 3, "seed": 4, "pruner": "none",
              "patience": 0, "warm_start": points}
    values.update(changes)
    return SearchSettings(**values)


def test_warm_start_trials_come_first_once_and_are_not_repeated_on_resume(space, base_config, tmp_path) -> None:
    plan = load_warm_start(space, PROJECT)
    search = Search(_settings(space, base_config, tmp_path, tuple(plan.points)), SimulatedExecutor())
    search.run()
    first = search.study.get_trials(deepcopy=False)[0]
    assert first.params == plan.points[0].params and first.user_attrs["warm_start"] == "luca_final_v1_pure"
    assert first.state == TrialState.COMPLETE
    # The reference is one of the 5 start-up trials TPE counts; the guide's 5 random ones stay.
    assert search.study.sampler._n_startup_trials == 6  # type: ignore[attr-defined]
    resumed = Search(_settings(space, base_config, tmp_path, tuple(plan.points), trials=5), SimulatedExecutor())
    resumed.run()
    trials = resumed.study.get_trials(deepcopy=False)
    assert sum("warm_start" in t.user_attrs for t in trials) == 1
    assert sum(t.params == plan.points[0].params for t in trials) == 1
    assert not [t for t in trials if t.state == TrialState.WAITING]
    entries = json.loads((tmp_path / RESULTS_FILE).read_text())["trials"]
    assert len([e for e in entries if e["outcome"] == "complete"]) == 5


def test_a_warm_start_point_that_breaks_a_safety_rule_is_rejected_not_trained(space, base_config, tmp_path) -> None:
    params, problems = express_in_space(space, flatten_training_tables(preset("luca_final_v1_pure")))
    assert problems == []
    unsafe = WarmStartPoint("too_hot", {**params, "learning_rate": 1.15e-4, "gradient_accumulation_steps": 1,
                                         "lr_warmup_steps": 50})
    executor = SimulatedExecutor()
    search = Search(_settings(space, base_config, tmp_path, (unsafe,), trials=1), executor)
    search.run()
    first = search.study.get_trials(deepcopy=False)[0]
    assert first.user_attrs["warm_start"] == "too_hot" and first.user_attrs["outcome"] == "rejected"
    assert set(first.user_attrs["failed_rules"]) == {"high_lr_short_warmup", "high_lr_without_accumulation"}
    assert "gpu_seconds" not in first.user_attrs  # no GPU time spent on it



def test_the_cli_warm_start_option_trains_the_reference_first_and_names_what_it_skipped(space, tmp_path,
                                                                                          capsys) -> None:
    from orchestrator.cli import main
    from orchestrator.common.tomlfile import dumps_toml

    from .conftest import small_base_config

    base = tmp_path / "base.toml"
    base.write_text(dumps_toml(small_base_config(epochs=8)))
    output = tmp_path / "search"
    argv = ["search", "--space", str(SPACE_FILE), "--base-config", str(base), "--executor", "simulated",
            "--trials", "1", "--seed", "2", "--pruner", "none", "--output"]
    assert main([*argv, str(output), "--warm-start"]) == 0
    assert "warm start: search_test_base is not in the search space (network_dim = 32 is not one of" in (
        capsys.readouterr().out)
    expected, _ = express_in_space(space, flatten_training_tables(preset("luca_final_v1_pure")))
    first = json.loads((output / RESULTS_FILE).read_text())["trials"][0]
    assert first["params"] == expected and first["outcome"] == "complete"
    # Without the option (the default) a new study starts with TPE's random start-up trials.
    plain = tmp_path / "plain"
    assert main([*argv, str(plain)]) == 0
    assert json.loads((plain / RESULTS_FILE).read_text())["trials"][0]["params"] != expected
