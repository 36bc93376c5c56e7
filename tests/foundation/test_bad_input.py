"""Every bad input gets one clear line naming the file and key, and a non-zero exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.common.tomlfile import dumps_toml, read_toml

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def rendered(machine, tmp_path, monkeypatch):
    """A valid rendered run whose files the tests then break one way each."""
    from orchestrator.kohya.render import render_run

    monkeypatch.chdir(PROJECT_ROOT)
    return render_run("luca_final_v1_pure", paths=machine, run_dir=tmp_path / "run")


def _edit(path: Path, section: str | None, key: str, value) -> None:
    document = read_toml(path)
    (document.setdefault(section, {}) if section else document)[key] = value
    path.write_text(dumps_toml(document))


def _check(path: Path, capsys) -> tuple[int, str]:
    code = main(["config", "check", str(path)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_valid_rendered_files_pass(rendered, capsys):
    code, output = _check(rendered.config_file, capsys)
    assert code == 0, output
    assert "OK" in output


def test_unknown_key_is_named_with_a_did_you_mean(rendered, capsys):
    _edit(rendered.config_file, "network", "netwrok_dim", 32)
    code, output = _check(rendered.config_file, capsys)
    assert code == 2
    assert str(rendered.config_file) in output and "netwrok_dim" in output
    assert "did you mean 'network_dim'" in output


def test_wrongly_typed_value(rendered, capsys):
    _edit(rendered.config_file, "network", "network_dim", "sixty-four")
    code, output = _check(rendered.config_file, capsys)
    assert code == 2 and "network_dim" in output and "expected int" in output


def test_value_outside_the_choices(rendered, capsys):
    _edit(rendered.config_file, "training", "mixed_precision", "fp8")
    code, output = _check(rendered.config_file, capsys)
    assert code == 2 and "mixed_precision" in output and "'fp8' is not one of" in output


def test_dataset_key_at_the_wrong_level(rendered, capsys):
    _edit(rendered.dataset_config_file, "general", "image_dir", "/somewhere")
    code, output = _check(rendered.dataset_config_file, capsys)
    assert code == 2
    assert str(rendered.dataset_config_file) in output and "general.image_dir" in output
    assert "allowed in [[datasets.subsets]]" in output


def test_integer_for_a_float_dataset_key_says_how_to_write_it(rendered, capsys):
    _edit(rendered.dataset_config_file, "general", "validation_split", 0)
    code, output = _check(rendered.dataset_config_file, capsys)
    assert code == 2 and "validation_split" in output and "write 0.0" in output


def test_missing_path(rendered, capsys):
    image_dir = Path(rendered.dataset["datasets"][0]["subsets"][0]["image_dir"])
    image_dir.rmdir()
    code, output = _check(rendered.config_file, capsys)
    assert code == 2 and "image_dir" in output and "does not exist" in output
    assert str(rendered.dataset_config_file) in output


def test_malformed_toml(tmp_path, capsys):
    broken = tmp_path / "broken.toml"
    broken.write_text("[network]\nnetwork_dim = = 3\n")
    code, output = _check(broken, capsys)
    assert code == 2 and str(broken) in output and "malformed TOML" in output


def test_checked_file_that_sets_xformers_is_an_error(rendered, capsys):
    _edit(rendered.config_file, "training", "xformers", True)
    code, output = _check(rendered.config_file, capsys)
    assert code == 2 and "xformers" in output and "sdpa" in output


def test_rendering_a_preset_that_sets_xformers_warns_names_the_file_and_exits_non_zero(machine, tmp_path, capsys,
                                                                                        monkeypatch):
    preset = tmp_path / "with_xformers.toml"
    text = (PROJECT_ROOT / "configs/training/luca_final_v1_pure.toml").read_text()
    preset.write_text(text.replace("xformers = false", "xformers = true"))
    for key in ("dataset_dir", "prompts_file", "base_model_sd15"):
        monkeypatch.setenv(f"LORA_PIPELINE_{key.upper()}", str(getattr(machine, key)))
    code = main(["config", "render", str(preset), "--out", str(tmp_path / "run")])
    output = capsys.readouterr()
    assert code == 3
    assert f"{preset}: key 'xformers'" in output.out and "SDPA" in output.out
    rendered = read_toml(tmp_path / "run" / "config" / "training.toml")
    assert rendered["training"]["xformers"] is False and rendered["training"]["sdpa"] is True


def test_render_with_an_unknown_override_writes_nothing(machine, tmp_path, capsys, monkeypatch):
    for key in ("dataset_dir", "prompts_file", "base_model_sd15"):
        monkeypatch.setenv(f"LORA_PIPELINE_{key.upper()}", str(getattr(machine, key)))
    code = main(["config", "render", "luca_final_v1_pure", "--set", "lerning_rate=1e-4",
                 "--out", str(tmp_path / "run")])
    output = capsys.readouterr().out
    assert code == 2 and "lerning_rate" in output and "did you mean 'learning_rate'" in output
    assert not (tmp_path / "run").exists()


def test_preset_with_a_machine_path_is_refused(tmp_path, capsys):
    preset = tmp_path / "bad.toml"
    preset.write_text('[preset]\nname = "bad"\nfamily = "sd15"\n[model]\npretrained_model_name_or_path = "/m"\n')
    code = main(["config", "render", str(preset), "--no-path-check", "--out", str(tmp_path / "run")])
    error = capsys.readouterr().err
    assert code == 2 and str(preset) in error and "model.pretrained_model_name_or_path" in error
