"""`search run --prior` and the Alberto space file end to end with the simulated executor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.common.errors import UserInputError
from orchestrator.common.tomlfile import dumps_toml, read_toml
from orchestrator.search.prior import prior_named_in
from orchestrator.search.space import load_search_space
from tests.search.conftest import PROJECT, SPACE_FILE, small_base_config

ALBERTO_SPACE = PROJECT / "configs" / "search" / "alberto_from_luca.toml"


@pytest.fixture
def preset_file(tmp_path: Path) -> Path:
    path = tmp_path / "base.toml"
    path.write_text(dumps_toml(small_base_config(epochs=8)))
    return path


def search_argv(preset_file: Path, output: Path, space: Path = SPACE_FILE) -> list[str]:
    return ["search", "--space", str(space), "--base-config", str(preset_file), "--executor", "simulated",
            "--seed", "4", "--pruner", "none", "--output", str(output)]


def test_a_search_started_from_a_prior_folder_trains_its_configs_first_and_analyze_reports_them(
        preset_file, tmp_path, capsys) -> None:
    luca = tmp_path / "luca"
    assert main([*search_argv(preset_file, luca), "--trials", "6"]) == 0
    capsys.readouterr()
    alberto = tmp_path / "alberto"
    assert main([*search_argv(preset_file, alberto), "--trials", "6", "--prior", str(luca)]) == 0
    printed = capsys.readouterr().out
    assert f"prior: study 'lora_hyperparameter_search' in {luca}" in printed
    assert "max_train_epochs is left to the search" in printed  # the simulated base has no images to count
    trials = json.loads((alberto / "trial_results.json").read_text())["trials"]
    assert [t["prior"]["kind"] for t in trials[:2]] == ["config", "config"]
    assert all(t["prior"] and t["prior"]["kind"] == "draw" for t in trials[2:6])
    assert main(["search", "analyze", str(alberto)]) == 0
    printed = capsys.readouterr().out
    assert "prior 'lora_hyperparameter_search':" in printed and "prior config 1 (trial 0 here): score there" in printed


def test_prior_study_without_prior_is_refused(preset_file, tmp_path, capsys) -> None:
    assert main([*search_argv(preset_file, tmp_path / "a"), "--prior-study", "luca"]) == 2
    assert "--prior-study names the study of --prior" in capsys.readouterr().err


def test_a_missing_prior_folder_is_refused_before_any_trial(preset_file, tmp_path, capsys) -> None:
    assert main([*search_argv(preset_file, tmp_path / "a"), "--prior", str(tmp_path / "no_luca")]) == 2
    assert "prior search folder not found" in capsys.readouterr().err
    assert not (tmp_path / "a" / "optuna_study.db").exists()


def test_the_alberto_space_is_lucas_with_longer_epochs_and_names_the_luca_search(tmp_path) -> None:
    alberto, luca = load_search_space(ALBERTO_SPACE), load_search_space(SPACE_FILE)
    assert alberto.parameter_names == luca.parameter_names
    assert alberto.validation_split == luca.validation_split
    epochs = {spec.name: spec for spec in alberto.parameters}["max_train_epochs"]
    assert max(epochs.choices) == 32
    assert prior_named_in(ALBERTO_SPACE, tmp_path) == (str(tmp_path / "outputs/luca_hyperparam_search"), None)


def test_a_space_files_prior_table_is_the_default_prior(preset_file, tmp_path, capsys) -> None:
    luca = tmp_path / "luca"
    assert main([*search_argv(preset_file, luca), "--trials", "5"]) == 0
    data = read_toml(ALBERTO_SPACE)
    data["prior"]["source"] = str(luca)
    data["parameters"]["max_train_epochs"]["choices"] = [4, 6, 8]
    space = tmp_path / "alberto.toml"
    space.write_text(dumps_toml(data))
    capsys.readouterr()
    assert main([*search_argv(preset_file, tmp_path / "alberto", space), "--trials", "3"]) == 0
    assert f"prior: study 'lora_hyperparameter_search' in {luca}" in capsys.readouterr().out


def test_a_malformed_prior_table_names_the_file_and_key(tmp_path) -> None:
    space = tmp_path / "space.toml"
    space.write_text('[prior]\nsource = "x"\nfolder = "y"\n')
    with pytest.raises(UserInputError, match="unknown key") as error:
        prior_named_in(space, tmp_path)
    assert "prior.folder" in str(error.value) and str(space) in str(error.value)
