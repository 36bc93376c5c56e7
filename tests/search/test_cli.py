"""The CLI end to end with the simulated executor: search, resume, analyze, worker errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.common.tomlfile import dumps_toml
from orchestrator.config.presets import load_preset
from tests.search.conftest import SPACE_FILE, small_base_config


@pytest.fixture
def preset_file(tmp_path: Path) -> Path:
    path = tmp_path / "base.toml"
    path.write_text(dumps_toml(small_base_config(epochs=8)))
    return path


def test_search_then_resume_then_analyze(preset_file, tmp_path, capsys) -> None:
    output = tmp_path / "search"
    argv = ["search", "--space", str(SPACE_FILE), "--base-config", str(preset_file), "--executor", "simulated",
            "--seed", "4", "--pruner", "none", "--output", str(output)]
    assert main([*argv, "--trials", "6"]) == 0
    printed = capsys.readouterr().out
    assert f"optuna-dashboard --host 127.0.0.1 --port 8080 sqlite:///{output / 'optuna_study.db'}" in printed
    assert main([*argv, "--trials", "8"]) == 0
    results = json.loads((output / "trial_results.json").read_text())
    assert results["counted_trials"] == 8
    capsys.readouterr()

    assert main(["search", "analyze", str(output)]) == 0
    printed = capsys.readouterr().out
    best = json.loads((output / "best_parameters.json").read_text())
    assert best["trial"] == results["best"]["number"] and best["score"] == results["best"]["value"]
    assert best["training_overrides"]["network_alpha"] == int(
        round(best["parameters"]["network_dim"] * best["parameters"]["network_alpha_ratio"], 6))
    assert f"best trial {best['trial']}" in printed
    preset = load_preset(output / "best_trial_config.toml")
    flat = {k: v for table in preset.sections.values() for k, v in table.items()}
    assert flat["learning_rate"] == best["parameters"]["learning_rate"]
    assert flat["network_alpha"] == best["training_overrides"]["network_alpha"]
    plots = sorted(p.name for p in (output / "analysis").glob("*.png"))
    assert {"history.png", "learning_rate.png", "dim_alpha.png", "schedulers.png", "best_epochs.png",
            "importances.png"} <= set(plots)
    for plot in plots:
        assert (output / "analysis" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    analysis = json.loads((output / "analysis" / "analysis.json").read_text())
    assert set(analysis["importances"]) <= set(best["parameters"]) and analysis["importances"]
    assert {row["lr_scheduler"] for row in analysis["schedulers"]} <= {"cosine_with_restarts", "cosine", "constant"}


def test_analyze_with_too_few_trials_says_so_and_skips_importances(preset_file, tmp_path, capsys) -> None:
    output = tmp_path / "search"
    assert main(["search", "--space", str(SPACE_FILE), "--base-config", str(preset_file), "--executor",
                 "simulated", "--trials", "2", "--seed", "1", "--pruner", "none", "--output", str(output)]) == 0
    assert main(["search", "analyze", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "importances need at least 4 completed trials" in printed
    assert not (output / "analysis" / "importances.png").exists()
    assert (output / "analysis" / "summary.md").read_text().count("only 2 completed trials") == 1


def test_analyze_without_results_is_a_clear_error(tmp_path, capsys) -> None:
    assert main(["search", "analyze", str(tmp_path)]) == 2
    assert "trial_results.json" in capsys.readouterr().err


def test_a_kohya_search_needs_references(preset_file, tmp_path, capsys) -> None:
    assert main(["search", "--base-config", str(preset_file), "--output", str(tmp_path)]) == 2
    assert "--references" in capsys.readouterr().err


def test_a_worker_for_an_unknown_study_names_the_studies_it_found(preset_file, tmp_path, capsys) -> None:
    output = tmp_path / "search"
    main(["search", "--space", str(SPACE_FILE), "--base-config", str(preset_file), "--executor", "simulated",
          "--trials", "1", "--output", str(output), "--study-name", "luca_a"])
    capsys.readouterr()
    storage = f"sqlite:///{output / 'optuna_study.db'}"
    assert main(["search", "worker", "--storage", storage, "--study-name", "luca_b", "--executor", "simulated",
                 "--output", str(tmp_path / "w")]) == 2
    assert "luca_a" in capsys.readouterr().err
    assert main(["search", "worker", "--storage", storage, "--study-name", "luca_a", "--executor", "simulated",
                 "--output", str(tmp_path / "w")]) == 0
