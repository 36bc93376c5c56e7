"""A search space's [validation] table: every trial gets the same split, the study stores it, and the
rendered trial turns sd-scripts' validation on."""

from __future__ import annotations

import pytest

from orchestrator.common.errors import UserInputError
from orchestrator.common.tomlfile import dumps_toml
from orchestrator.config.paths import load_paths
from orchestrator.kohya.render import render_run
from orchestrator.search.merge import merge_trial_config
from orchestrator.search.space import load_search_space, parse_search_space
from tests.search.conftest import PROJECT, SPACE_FILE

PARAMETERS = {"network_dim": {"kind": "categorical", "choices": [8, 16]}}


def test_the_shipped_space_validates_every_trial_on_a_tenth_of_the_images():
    space = load_search_space(SPACE_FILE)
    assert space.validation_split == 0.1
    overrides = space.training_overrides({name: spec.choices[0] if spec.choices else spec.low
                                          for name, spec in zip(space.parameter_names, space.parameters,
                                                                strict=True)})
    assert overrides["dataset.validation_split"] == 0.1 and "dataset.validation_seed" not in overrides


def test_a_validation_table_adds_the_same_split_to_every_trial_and_survives_the_study_round_trip():
    space = parse_search_space({"parameters": PARAMETERS, "validation": {"split": 0.15, "seed": 7}})
    assert space.training_overrides({"network_dim": 8}) == {"network_dim": 8, "dataset.validation_split": 0.15,
                                                           "dataset.validation_seed": 7}
    again = parse_search_space(space.to_data())  # what a worker loads from the study
    assert (again.validation_split, again.validation_seed) == (0.15, 7)


def test_without_a_validation_table_the_stored_space_is_as_before():
    space = parse_search_space({"parameters": PARAMETERS})
    assert "validation" not in space.to_data()  # studies created before [validation] still resume
    assert space.training_overrides({"network_dim": 8}) == {"network_dim": 8}
    assert parse_search_space({"parameters": PARAMETERS, "validation": {"split": 0.0}}).validation_split is None


@pytest.mark.parametrize(("table", "key"), [({"split": 1.0}, "validation.split"), ({"split": "0.1"}, "validation.split"),
                                            ({"split": 0.1, "seed": 1.5}, "validation.seed"),
                                            ({"split": 0.1, "every": 2}, "validation.every")])
def test_a_bad_validation_table_names_its_key(table, key):
    with pytest.raises(UserInputError) as error:
        parse_search_space({"parameters": PARAMETERS, "validation": table})
    assert error.value.key == key


def test_the_split_cannot_also_be_searched():
    with pytest.raises(UserInputError, match="fixed by \\[validation\\]"):
        parse_search_space({"parameters": {**PARAMETERS, "validation_split": {"kind": "categorical",
                                                                            "choices": [0.1, 0.2]}},
                            "validation": {"split": 0.1}})


def test_a_trial_of_a_validating_space_renders_sd_scripts_validation(tmp_path):
    folder = tmp_path / "data" / "10_luca"
    folder.mkdir(parents=True)
    for index in range(20):
        (folder / f"frame_{index:02d}.png").write_bytes(b"png")
    paths = load_paths(PROJECT).with_overrides(dataset_dir=tmp_path / "data", output_root=tmp_path / "outputs",
                                               base_model_sd15="model", tokenizer_cache_dir="")
    space = parse_search_space({"parameters": PARAMETERS, "validation": {"split": 0.1}})
    base = {"preset": {"name": "base", "family": "sd15"}, "dataset": {"resolution": 512},
            "training": {"seed": 3, "max_train_epochs": 4}, "sample": {"sample_every_n_epochs": 2}}
    (tmp_path / "trial.toml").write_text(dumps_toml(merge_trial_config(base, space.training_overrides(
        {"network_dim": 8}))))
    rendered = render_run(tmp_path / "trial.toml", paths=paths, run_dir=tmp_path / "run")
    assert rendered.dataset["general"]["validation_split"] == 0.1
    assert rendered.dataset["general"]["validation_seed"] == 3
    assert rendered.training["validate_every_n_epochs"] == 2
    assert not rendered.warnings  # 20 images at 0.1: 2 held out, none in both sets
