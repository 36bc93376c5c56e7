from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.common.errors import UserInputError
from orchestrator.search.space import SearchSpace, parse_search_space


class FixedTrial:
    """Answers each suggest_* with a preset value, recording what was asked."""

    def __init__(self, values: dict) -> None:
        self.values = values
        self.asked: dict[str, tuple] = {}

    def suggest_categorical(self, name, choices):
        self.asked[name] = ("categorical", tuple(choices))
        return self.values[name]

    def suggest_float(self, name, low, high, *, step=None, log=False):
        self.asked[name] = ("float", low, high, step, log)
        return self.values[name]

    def suggest_int(self, name, low, high, *, step=1, log=False):
        self.asked[name] = ("int", low, high, step, log)
        return self.values[name]


GUIDE_VALUES = {
    "network_dim": 128, "network_alpha_ratio": 0.55, "network_dropout": 0.05, "learning_rate": 9e-5,
    "text_encoder_lr": 5e-5, "lr_scheduler": "cosine", "max_train_epochs": 16, "min_snr_gamma": 5,
    "optimizer_type": "AdamW", "gradient_accumulation_steps": 2, "lr_warmup_steps": 100,
}


def test_shipped_space_has_the_guides_eleven_parameters_with_their_types(space: SearchSpace) -> None:
    trial = FixedTrial(GUIDE_VALUES)
    space.sample(trial)
    assert trial.asked["network_dim"] == ("categorical", (64, 128, 256))
    assert trial.asked["network_alpha_ratio"] == ("float", 0.25, 0.9, 0.05, False)
    assert trial.asked["learning_rate"] == ("float", 6e-5, 1.2e-4, None, True)
    assert trial.asked["text_encoder_lr"] == ("float", 3e-5, 8e-5, None, True)
    assert trial.asked["lr_warmup_steps"] == ("categorical", (50, 100, 150, 200))
    assert len(trial.asked) == 11


def test_overrides_derive_alpha_as_int_of_dim_times_ratio_and_drop_the_helper(space: SearchSpace) -> None:
    overrides = space.training_overrides(GUIDE_VALUES)
    assert overrides["network_alpha"] == int(128 * 0.55) == 70
    assert overrides["unet_lr"] == overrides["learning_rate"] == 9e-5
    assert "network_alpha_ratio" not in overrides


@pytest.mark.parametrize(("dim", "ratio", "alpha"), [(64, 0.75, 48), (256, 0.35, 89), (128, 0.85, 108)])
def test_alpha_is_not_one_short_because_of_float_error(space: SearchSpace, dim: int, ratio: float,
                                                        alpha: int) -> None:
    ratio_as_optuna_returns = ratio + 1e-12 if ratio != 0.75 else 0.7499999999999999
    values = {**GUIDE_VALUES, "network_dim": dim, "network_alpha_ratio": ratio_as_optuna_returns}
    assert space.training_overrides(values)["network_alpha"] == alpha


def test_space_round_trips_through_its_stored_form(space: SearchSpace) -> None:
    again = parse_search_space(space.to_data())
    assert again.parameters == space.parameters and again.derived == space.derived


@pytest.mark.parametrize(("table", "key"), [
    ({"parameters": {"x": {"kind": "float", "low": 2, "high": 1}}}, "parameters.x"),
    ({"parameters": {"x": {"kind": "float", "low": 0, "high": 1, "log": True}}}, "parameters.x"),
    ({"parameters": {"x": {"kind": "categorical", "choices": []}}}, "parameters.x.choices"),
    ({"parameters": {"x": {"kind": "normal"}}}, "parameters.x.kind"),
    ({"parameters": {"x": {"kind": "categorical", "choices": [1]}},
      "derived": {"y": {"rule": "int_product", "of": ["x", "z"]}}}, "derived.y.of"),
    ({}, "parameters"),
])
def test_bad_space_files_name_the_key(table: dict, key: str) -> None:
    with pytest.raises(UserInputError) as caught:
        parse_search_space(table, source=Path("space.toml"))
    assert caught.value.key == key and "space.toml" in str(caught.value)


def test_a_param_spec_owns_its_distribution_its_grid_and_its_fit() -> None:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from orchestrator.search.space import ParamSpec

    dim = ParamSpec("network_dim", "int", low=8, high=64, step=8)
    rate = ParamSpec("learning_rate", "float", low=1e-5, high=1e-3, log=True)
    ratio = ParamSpec("alpha_ratio", "float", low=0.25, high=1.0, step=0.25)
    optim = ParamSpec("optimizer_type", "categorical", choices=("AdamW", "Lion"))
    assert dim.distribution() == IntDistribution(8, 64, step=8)
    assert rate.distribution() == FloatDistribution(1e-5, 1e-3, log=True)
    assert optim.distribution() == CategoricalDistribution(["AdamW", "Lion"])
    assert dim.ends() == [8, 64] and optim.ends() == ["AdamW", "Lion"]
    assert ratio.grid() == [0.25, 0.5, 0.75, 1.0] and rate.grid() is None and dim.grid() == list(range(8, 65, 8))
    assert dim.fit(32.0) == (32, None) and ratio.fit(0.5000000000001) == (0.5, None)
    assert optim.fit("Lion") == ("Lion", None)
    assert dim.fit(30)[1] == "network_dim = 30 is not on the space's 8 grid"
    assert dim.fit(128)[1] == "network_dim = 128 is outside [8, 64]"
    assert rate.fit("fast")[1] == "learning_rate = 'fast' is not a number"
    assert optim.fit("SGD")[1] == "optimizer_type = 'SGD' is not one of ['AdamW', 'Lion']"
    assert dim.snap(30) == 32 and dim.snap(500) == 64 and ratio.snap(0.3) == 0.25 and rate.snap(1.0) == 1e-3
