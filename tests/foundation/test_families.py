"""FLUX.1, Chroma and SD3.5 through sd-scripts' own scripts: the family table, render, check, pre-flight.

Every family's facts come from one table (kohya/families.py); these tests hold that table to the recorded
argument lists of the pinned sd-scripts, and prove the refusals a user meets before any GPU time is spent.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from safetensors.numpy import save_file

from orchestrator.common.errors import UserInputError
from orchestrator.config.presets import available_presets, load_preset
from orchestrator.kohya.check import check_config_file, infer_family, validate_rendered
from orchestrator.kohya.contract import recorded_contract
from orchestrator.kohya.families import BASE_MODEL_ARGUMENT, FAMILIES, family_named, family_of_argv
from orchestrator.kohya.render import render_run
from orchestrator.kohya.validate import errors
from orchestrator.runner.preflight import check_model_files, estimate_checkpoint_bytes
from tests.foundation.model_file_fixtures import flux_checkpoint, sd3_checkpoint, sdxl_checkpoint

NEW_PRESETS = ("flux1_dev_24gb", "flux1_dev_16gb", "chroma_24gb", "sd35_medium_16gb")


@pytest.fixture
def flow_machine(machine, tmp_path):
    """``machine`` plus every model file FLUX.1, Chroma and SD3.5 read, as small real safetensors files."""
    models = tmp_path / "flow_models"
    models.mkdir()
    files = {"base_model_flux1": flux_checkpoint(models / "flux1-dev.safetensors"),
             "base_model_chroma": flux_checkpoint(models / "chroma.safetensors", chroma=True),
             "base_model_sd35": sd3_checkpoint(models / "sd3.5_medium.safetensors")}
    for key in ("clip_l", "clip_g", "t5xxl", "ae"):
        path = models / f"{key}.safetensors"
        save_file({"weight": __import__("numpy").zeros((2, 2), dtype="float32")}, str(path))
        files[key] = path
    return machine.with_overrides(**{key: str(path) for key, path in files.items()})


def test_every_family_names_a_recorded_script_whose_arguments_it_uses():
    contract = recorded_contract()
    for family in FAMILIES.values():
        arguments = contract.arguments_of(family.training_script)
        for model in family.models:
            assert model.argument in arguments, (family.name, model.argument)
        for key, value in family.fixed_arguments.items():
            spec = arguments[key]
            assert spec.choices is None or value in spec.choices, (family.name, key)


def test_recorded_flux_and_sd3_argument_lists_are_the_pinned_parsers():
    contract = recorded_contract()
    flux, sd3 = contract.arguments_of("flux_train_network.py"), contract.arguments_of("sd3_train_network.py")
    assert len(flux) == 215 and len(sd3) == 218
    assert flux["model_type"].choices == ("flux", "chroma")
    assert flux["timestep_sampling"].choices == ("sigma", "uniform", "sigmoid", "shift", "flux_shift")
    assert {"t5xxl", "ae", "clip_l", "blocks_to_swap", "fp8_base", "guidance_scale"} <= set(flux)
    assert {"clip_g", "t5xxl", "weighting_scheme", "training_shift"} <= set(sd3) and "ae" not in sd3


def test_every_preset_names_a_known_family():
    for name in available_presets():
        family_named(load_preset(name).family)


def test_an_unknown_family_is_refused_naming_the_preset_and_key(machine, tmp_path):
    preset = tmp_path / "odd.toml"
    preset.write_text('[preset]\nname = "odd"\nfamily = "lumina"\n[training]\nmax_train_epochs = 1\n')
    with pytest.raises(UserInputError, match=r"odd.toml: key 'preset.family': family must be one of"):
        render_run(preset, paths=machine, write=False)


@pytest.mark.parametrize("preset", NEW_PRESETS)
def test_new_presets_render_their_family_script_and_model_files_and_check_clean(preset, flow_machine, tmp_path):
    rendered = render_run(preset, paths=flow_machine, run_dir=tmp_path / preset)
    family = FAMILIES[rendered.family]
    assert rendered.script_name == family.training_script
    assert rendered.training["network_module"] == family.network_module
    for model in family.models:
        assert rendered.training[model.argument] == str(getattr(flow_machine, model.paths_key))
    for key, value in family.fixed_arguments.items():
        assert rendered.training[key] == value
    assert validate_rendered(rendered) == []
    # The written file is checked the same way (header names the family).
    assert errors(check_config_file(rendered.config_file)) == []


def test_chroma_reads_no_clip_l_and_sd35_no_autoencoder(flow_machine, tmp_path):
    chroma = render_run("chroma_24gb", paths=flow_machine, run_dir=tmp_path / "c", write=False)
    sd35 = render_run("sd35_medium_16gb", paths=flow_machine, run_dir=tmp_path / "s", write=False)
    assert "clip_l" not in chroma.training and chroma.training["guidance_scale"] == 0.0
    assert "ae" not in sd35.training and sd35.training["clip_g"]


def test_a_preset_contradicting_its_family_is_refused(flow_machine, tmp_path):
    with pytest.raises(UserInputError, match=r"key 'network_module': FLUX.1 LoRAs are trained with networks.lora_flux"):
        render_run("flux1_dev_24gb", overrides={"network_module": "networks.lora"}, paths=flow_machine, write=False)
    with pytest.raises(UserInputError, match=r"key 'guidance_scale': Chroma needs guidance_scale = 0.0"):
        render_run("chroma_24gb", overrides={"guidance_scale": 1.0}, paths=flow_machine, write=False)


@pytest.mark.parametrize("missing", ["t5xxl", "ae", "clip_l", "base_model_flux1"])
def test_a_flux_preset_with_a_missing_model_path_is_refused_naming_the_paths_key(missing, flow_machine, tmp_path):
    paths = flow_machine.with_overrides(**{missing: ""})
    rendered = render_run("flux1_dev_24gb", paths=paths, run_dir=tmp_path / "run", write=False)
    problems = [str(p) for p in validate_rendered(rendered)]
    assert len(problems) == 1 and f"set `{missing}` in configs/paths.toml" in problems[0]
    report = check_model_files(rendered.family, rendered.training)
    assert len(report.problems) == 1 and f"`{missing}`" in report.problems[0]


def test_a_model_path_that_does_not_exist_is_refused_with_its_key(flow_machine, tmp_path):
    paths = flow_machine.with_overrides(t5xxl=str(tmp_path / "gone.safetensors"))
    rendered = render_run("sd35_medium_16gb", paths=paths, run_dir=tmp_path / "run", write=False)
    [problem] = check_model_files(rendered.family, rendered.training).problems
    assert "t5xxl: does not exist" in problem and "key `t5xxl`" in problem


def test_a_flux_checkpoint_where_sdxl_is_expected_is_refused_saying_what_it_looks_like(flow_machine, tmp_path):
    paths = flow_machine.with_overrides(base_model_sdxl=flow_machine.base_model_flux1)
    rendered = render_run("sdxl_16gb_optimized", paths=paths, run_dir=tmp_path / "run", write=False)
    [problem] = errors(validate_rendered(rendered))
    assert "SDXL expected" in problem.message and "looks like a FLUX.1 model" in problem.message
    assert "2 double and 1 single blocks" in problem.message
    assert any("looks like a FLUX.1 model" in p for p in check_model_files("sdxl", rendered.training).problems)


def test_an_sdxl_checkpoint_where_flux_is_expected_is_refused(flow_machine, tmp_path):
    sdxl = sdxl_checkpoint(tmp_path / "sdxl.safetensors")
    paths = flow_machine.with_overrides(base_model_flux1=str(sdxl))
    rendered = render_run("flux1_dev_16gb", paths=paths, run_dir=tmp_path / "run", write=False)
    [problem] = check_model_files("flux1", rendered.training).problems
    assert "FLUX.1 expected" in problem and "looks like a SDXL model" in problem and "base_model_flux1" in problem


def test_an_unrecognised_base_model_file_is_not_refused(flow_machine, tmp_path):
    # The check refuses what is recognisably another family; a file it cannot read is the trainer's to judge.
    paths = flow_machine.with_overrides(base_model_flux1=str(flow_machine.clip_l))
    rendered = render_run("flux1_dev_24gb", paths=paths, run_dir=tmp_path / "run", write=False)
    assert check_model_files("flux1", rendered.training).problems == []


def test_a_hand_written_config_is_read_as_the_family_its_model_files_say(tmp_path):
    contract = recorded_contract()
    flux = {BASE_MODEL_ARGUMENT: "f", "clip_l": "c", "t5xxl": "t", "ae": "a"}
    assert infer_family(flux, "", contract) == "flux1"
    assert infer_family({**flux, "model_type": "chroma"}, "", contract) == "chroma"
    assert infer_family({BASE_MODEL_ARGUMENT: "f", "t5xxl": "t", "ae": "a", "model_type": "chroma"}, "",
                        contract) == "chroma"
    assert infer_family({BASE_MODEL_ARGUMENT: "f", "clip_l": "c", "clip_g": "g", "t5xxl": "t"}, "", contract) == "sd35"
    assert infer_family({BASE_MODEL_ARGUMENT: "x/sdxl-base"}, "", contract) == "sdxl"


def test_a_run_records_family_comes_from_its_script_and_model_type():
    assert family_of_argv(["py", "/sd/flux_train_network.py", "--config_file", "c"]).name == "flux1"
    assert family_of_argv(["py", "/sd/flux_train_network.py", "--model_type", "chroma"]).name == "chroma"
    assert family_of_argv(["py", "/sd/flux_train_network.py", "--model_type=chroma"]).name == "chroma"
    assert family_of_argv(["py", "sd3_train_network.py"]).name == "sd35"
    assert family_of_argv(["py", "sdxl_train_network.py"]).name == "sdxl"
    assert family_of_argv(["py", "train_network.py"]).name == "sd15"
    assert family_of_argv(["py", "other.py"]) is None


def test_disk_estimate_follows_the_familys_lora_size():
    training = {"network_dim": 16, "max_train_epochs": 4, "save_every_n_epochs": 1}
    assert estimate_checkpoint_bytes(training, "flux1") > 10 * estimate_checkpoint_bytes(training, "sd15")


@pytest.mark.parametrize("preset", ["flux1_dev_24gb", "sd35_medium_16gb"])
def test_train_dry_run_prints_the_familys_script(preset, flow_machine, tmp_path, monkeypatch, capsys):
    from orchestrator.cli import main

    for key in ("base_model_flux1", "base_model_sd35", "clip_l", "clip_g", "t5xxl", "ae", "prompts_file",
                "dataset_dir", "output_root"):
        monkeypatch.setenv(f"LORA_PIPELINE_{key.upper()}", str(getattr(flow_machine, key)))
    main(["train", preset, "--dry-run", "--allow-cpu", "--out", str(tmp_path / "run")])
    captured = capsys.readouterr()
    printed = captured.out
    assert "model files" not in captured.err  # the pre-flight's other findings (an empty dataset) may stand
    assert FAMILIES[load_preset(preset).family].training_script in printed.splitlines()[-1]
    assert f"t5xxl = \"{flow_machine.t5xxl}\"" in printed


@pytest.mark.sd_scripts
@pytest.mark.parametrize("preset", NEW_PRESETS)
def test_new_presets_are_accepted_by_the_real_parser(preset, sd_scripts_dir, trainer_python, flow_machine, tmp_path):
    """The pinned script's own parser and config reader take the rendered file, and read our values back."""
    rendered = render_run(preset, paths=flow_machine, run_dir=tmp_path / "run")
    module = rendered.script_name[:-3]
    probe = (f"import sys; sys.path.insert(0, '.'); import {module}; from library import train_util;"
             f"p = {module}.setup_parser(); a = p.parse_args();"
             "a = train_util.read_config_from_file(a, p);"
             "print(a.network_module, a.t5xxl, a.network_dim, getattr(a, 'model_type', '-'), a.sdpa)")
    completed = subprocess.run([trainer_python, "-c", probe, "--config_file", str(rendered.config_file)],
                               cwd=sd_scripts_dir, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    family = FAMILIES[rendered.family]
    expected = (f"{family.network_module} {flow_machine.t5xxl} 16 "
                f"{family.fixed_arguments.get('model_type', '-')} True")
    assert completed.stdout.strip().splitlines()[-1] == expected


def test_model_files_never_come_from_a_preset(tmp_path):
    preset = tmp_path / "p.toml"
    preset.write_text('[preset]\nname = "p"\nfamily = "flux1"\n[model]\nt5xxl = "/models/t5.safetensors"\n')
    with pytest.raises(UserInputError, match=r"key 'model.t5xxl': presets never hold machine paths"):
        load_preset(preset)


def test_the_shipped_paths_file_names_every_familys_model_keys():
    text = (Path(__file__).resolve().parents[2] / "configs" / "paths.toml").read_text()
    for family in FAMILIES.values():
        for model in family.models:
            assert f"\n{model.paths_key} = " in text, model.paths_key


def test_doctor_reports_each_familys_model_files(flow_machine, tmp_path):
    from orchestrator.doctor import check_base_models

    def findings(paths):
        return {f.topic: f for f in check_base_models(paths)}

    assert {findings(flow_machine)[f"models {name}"].status for name in ("flux1", "chroma", "sd35")} == {"ok"}
    unset = flow_machine.with_overrides(base_model_sd35="", clip_g="")
    assert findings(unset)["models sd35"].status == "warn" and "base_model_sd35, clip_g" in findings(unset)["models sd35"].detail
    wrong = flow_machine.with_overrides(base_model_flux1=flow_machine.base_model_sd35)
    flux = findings(wrong)["models flux1"]
    assert flux.status == "fail" and "looks like a SD3.5 model" in flux.detail


@pytest.mark.sd_scripts
@pytest.mark.parametrize(("script", "utils"), [("flux_train_network.py", "library/flux_train_utils.py"),
                                               ("sd3_train_network.py", "library/sd3_train_utils.py")])
def test_flow_scripts_share_the_loop_and_sample_names_our_monitor_and_evaluation_read(script, utils, sd_scripts_dir):
    """The monitor's grammar (kohya/log_grammar.py) and the sample-image names evaluation reads come from
    train_network.py's NetworkTrainer.train and train_util's sample naming; FLUX.1 and SD3.5 inherit the loop
    and repeat the name format, so both hold for them. A new sd-scripts that overrides either fails here."""
    import re

    source = (sd_scripts_dir / script).read_text(encoding="utf-8")
    assert re.search(r"class \w+\(train_network\.NetworkTrainer\)", source)
    assert "def train(self" not in source
    name_format = ('img_filename = f"{\'\' if args.output_name is None else args.output_name + \'_\'}'
                   '{num_suffix}_{i:02d}_{ts_str}{seed_suffix}.png"')
    assert name_format in (sd_scripts_dir / "library" / "train_util.py").read_text(encoding="utf-8")
    assert name_format in (sd_scripts_dir / utils).read_text(encoding="utf-8")


def test_train_refuses_a_flux_preset_without_t5_before_launch(flow_machine, tmp_path, monkeypatch, capsys):
    from orchestrator.cli import main

    for key in ("base_model_flux1", "clip_l", "ae", "prompts_file", "dataset_dir", "output_root"):
        monkeypatch.setenv(f"LORA_PIPELINE_{key.upper()}", str(getattr(flow_machine, key)))
    monkeypatch.setenv("LORA_PIPELINE_T5XXL", "")
    monkeypatch.setenv("LORA_PIPELINE_HOME", str(Path(__file__).resolve().parents[2]))
    code = main(["train", "flux1_dev_24gb", "--allow-cpu", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1 and "model files: t5xxl:" in err and "set `t5xxl` in configs/paths.toml" in err
    assert not (tmp_path / "run").exists()


def test_a_chroma_run_is_told_from_flux_by_its_rendered_config(flow_machine, tmp_path):
    from orchestrator.kohya.check import family_of_command

    rendered = render_run("chroma_24gb", paths=flow_machine, run_dir=tmp_path / "run")
    argv = ["py", "/sd/flux_train_network.py", "--config_file", str(rendered.config_file)]
    assert family_of_command(argv) == "chroma"
    rendered.config_file.unlink()
    assert family_of_command(argv) == "flux1"  # without the file: the script's default model_type


def test_sample_prompt_options_the_familys_sampler_ignores_are_warned(flow_machine, tmp_path):
    prompts = tmp_path / "flux_prompts.txt"
    prompts.write_text("# guidance for FLUX\nluca at the sea --w 1024 --h 1024 --d 7 --g 3.5 --ss euler_a\n")
    paths = flow_machine.with_overrides(prompts_file=prompts)
    flux = validate_rendered(render_run("flux1_dev_24gb", paths=paths, run_dir=tmp_path / "f", write=False))
    sd15 = validate_rendered(render_run("luca_final_v1_pure", paths=paths, run_dir=tmp_path / "s", write=False))
    assert [p.severity for p in flux] == ["warning"] and "--ss (first on prompt 1)" in flux[0].message
    assert any(p.severity == "warning" and "--g (first on prompt 1) is not read by SD1.5" in p.message for p in sd15)
