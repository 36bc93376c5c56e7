"""project.toml: init writes every option, and every load refuses what it cannot understand, naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.common.errors import UserInputError
from orchestrator.common.tomlfile import read_toml
from orchestrator.project import PROJECT_FILE, PROJECT_VERSION, init_project, load_project
from orchestrator.project.schema import KEYS


def _init(tmp_path: Path, inputs: dict[str, Path], **kwargs) -> Path:
    init_project(tmp_path / "luca", films=[inputs["film"]], references=inputs["references"],
                 profile=inputs["profile"], **kwargs)
    return tmp_path / "luca"


def test_init_writes_every_option_with_its_default_and_a_comment(tmp_path, inputs) -> None:
    folder = _init(tmp_path, inputs)
    text = (folder / PROJECT_FILE).read_text(encoding="utf-8")
    document = read_toml(folder / PROJECT_FILE)
    for key in KEYS:
        assert key.name in document[key.section], f"{key.section}.{key.name} missing"
        assert key.comment in text
    assert document["project"]["version"] == PROJECT_VERSION
    assert document["inputs"]["films"] == [str(inputs["film"].resolve())]
    assert document["train"]["preset"] == "luca_final_v1_pure"
    project = load_project(folder)
    assert project.get("crop", "masks") is True and project.films == [inputs["film"].resolve()]


def test_the_family_is_checked_against_the_families_the_code_knows(tmp_path, inputs) -> None:
    folder = _init(tmp_path, inputs, family="sdxl")
    assert load_project(folder).get("train", "preset") == "sdxl_16gb_optimized"
    with pytest.raises(UserInputError, match=r"project.family.*must be one of .*sd15.*sdxl"):
        _init(tmp_path / "b", inputs, family="sd2")


@pytest.mark.parametrize(("edit", "message"), [
    ("[crop]\nmasks = true\nmask = false\n", r"project.toml: key 'crop.mask': unknown key"),
    ("[crop]\nmin_side = -4\n", r"project.toml: key 'crop.min_side': must be at least 32"),
    ("[final]\nmode = \"both\"\n", r"key 'final.mode': must be one of train, search"),
    ("[extract]\nper_shot = nan\n", r"key 'extract.per_shot'"),
    ("[sampling]\nsteps = 3\n", r"key 'sampling': unknown section"),
    (f"[project]\nversion = {PROJECT_VERSION + 1}\n", r"key 'project.version': written by a newer lora-pipeline"),
])
def test_a_bad_project_file_is_refused_naming_the_file_and_the_key(tmp_path, inputs, edit, message) -> None:
    folder = _init(tmp_path, inputs)
    file = folder / PROJECT_FILE
    document = read_toml(file)
    text = file.read_text(encoding="utf-8")
    section = edit.split("]")[0][1:]
    # Replace the section in place: the edit names the section's only keys we care about.
    kept = "\n".join(line for line in text.splitlines() if not line.startswith(tuple(
        k.split(" =")[0] for k in edit.splitlines()[1:])))
    file.write_text(kept.replace(f"[{section}]", edit.rstrip("\n"), 1) if section in document
                    else kept + "\n" + edit, encoding="utf-8")
    with pytest.raises(UserInputError, match=message):
        load_project(folder)
    assert main(["status", str(folder)]) != 0
    assert file.read_text(encoding="utf-8") != ""  # nothing lost


def test_a_folder_without_project_toml_is_no_project(tmp_path: Path, capsys) -> None:
    with pytest.raises(UserInputError, match=r"not a project folder: no project.toml.*lora-pipeline init"):
        load_project(tmp_path)
    assert main(["run", str(tmp_path)]) == 2
    assert str(tmp_path) in capsys.readouterr().err


def test_init_never_overwrites_a_project(tmp_path, inputs) -> None:
    folder = _init(tmp_path, inputs)
    (folder / PROJECT_FILE).write_text((folder / PROJECT_FILE).read_text() + "# my notes\n")
    with pytest.raises(UserInputError, match="already a project"):
        _init(tmp_path, inputs)
    assert (folder / PROJECT_FILE).read_text().endswith("# my notes\n")


def test_bad_inputs_are_refused_naming_the_file_and_nothing_is_written(tmp_path, inputs) -> None:
    missing = tmp_path / "nowhere.mkv"
    with pytest.raises(UserInputError, match="nowhere.mkv: video file not found"):
        init_project(tmp_path / "a", films=[missing], references=inputs["references"], profile=inputs["profile"])
    garbage = tmp_path / "garbage.mkv"
    garbage.write_bytes(b"not a video at all" * 100)
    with pytest.raises(UserInputError, match="garbage.mkv: cannot open as a video"):
        init_project(tmp_path / "a", films=[garbage], references=inputs["references"], profile=inputs["profile"])
    empty = tmp_path / "empty_refs"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(UserInputError, match="empty_refs: key 'inputs.references': references folder holds no images"):
        init_project(tmp_path / "a", films=[inputs["film"]], references=empty, profile=inputs["profile"])
    bad_profile = tmp_path / "bad.yaml"
    bad_profile.write_text(inputs["profile"].read_text() + "\nfavourite_colour: red\n")
    with pytest.raises(UserInputError, match="bad.yaml.*favourite_colour"):
        init_project(tmp_path / "a", films=[inputs["film"]], references=inputs["references"], profile=bad_profile)
    assert not (tmp_path / "a").exists()


def test_init_command_writes_the_project_and_says_what_next(tmp_path, inputs, capsys) -> None:
    code = main(["init", str(tmp_path / "p"), "--film", str(inputs["film"]), "--references",
                 str(inputs["references"]), "--profile", str(inputs["profile"]), "--search"])
    assert code == 0
    assert load_project(tmp_path / "p").get("final", "mode") == "search"
    assert "lora-pipeline run" in capsys.readouterr().out


@pytest.mark.parametrize(("family", "preset", "space"), [
    ("sd15", "luca_final_v1_pure", "luca_tpe_v2_1"),
    ("flux1", "flux1_dev_24gb", "flux1_character"),
])
def test_the_family_chooses_the_preset_and_the_search_space_a_project_trains_with(
        tmp_path, inputs, family, preset, space) -> None:
    from orchestrator.config.paths import load_paths
    from orchestrator.project.context import RunContext, preset_path, space_path

    context = RunContext(project=load_project(_init(tmp_path, inputs, family=family)),
                         paths=load_paths())
    assert preset_path(context).stem == preset
    assert space_path(context).stem == space


def test_a_family_without_a_search_space_is_refused_naming_the_key(tmp_path, inputs) -> None:
    from orchestrator.config.paths import load_paths
    from orchestrator.project.context import RunContext, space_path

    context = RunContext(project=load_project(_init(tmp_path, inputs, family="sd35")),
                         paths=load_paths())
    with pytest.raises(UserInputError, match=r"final.space.*sd35 family has no default space"):
        space_path(context)


def test_captions_follow_the_family_a_new_family_redoes_them(tmp_path, inputs) -> None:
    from orchestrator.config.paths import load_paths
    from orchestrator.project.context import RunContext
    from orchestrator.project.records import ContentHashes
    from orchestrator.project.stages import caption_reads

    reads = {}
    for family in ("sd15", "flux1"):
        context = RunContext(project=load_project(_init(tmp_path / family, inputs, family=family)), paths=load_paths())
        reads[family] = caption_reads(context, ContentHashes(tmp_path / family))
    assert reads["sd15"]["family"] == "sd15" and reads["flux1"]["family"] == "flux1"
    assert reads["sd15"] != reads["flux1"]


def test_a_project_training_loads_its_data_in_fresh_workers_so_a_resume_draws_the_same_batches(
        tmp_path, inputs) -> None:
    from orchestrator.config.paths import load_paths
    from orchestrator.project.context import RunContext
    from orchestrator.project.training import _overrides

    folder = _init(tmp_path, inputs, settings={"train": {"set": {"max_data_loader_n_workers": 0}}})
    overrides = _overrides(RunContext(project=load_project(folder), paths=load_paths()))
    assert overrides["save_state"] is True
    assert overrides["max_data_loader_n_workers"] == 1 and overrides["persistent_data_loader_workers"] is False


def test_a_search_project_searches_with_the_scheduler_and_gpu_budget_its_file_names(tmp_path, inputs) -> None:
    from orchestrator.config.paths import load_paths
    from orchestrator.project.context import RunContext
    from orchestrator.project.training import search_settings
    from orchestrator.search.choices import DEFAULT_SCHEDULER

    folder = _init(tmp_path, inputs, settings={"final": {"mode": "search"}})
    settings = search_settings(RunContext(project=load_project(folder), paths=load_paths()))
    assert (settings.scheduler, settings.gpu_hours) == (DEFAULT_SCHEDULER, None)
    file = folder / PROJECT_FILE
    file.write_text(file.read_text(encoding="utf-8").replace(f'scheduler = "{DEFAULT_SCHEDULER}"', 'scheduler = "pause"')
                    .replace("gpu_hours = 0.0", "gpu_hours = 120.0"), encoding="utf-8")
    settings = search_settings(RunContext(project=load_project(folder), paths=load_paths()))
    assert (settings.scheduler, settings.gpu_hours) == ("pause", 120.0)
    file.write_text(file.read_text(encoding="utf-8").replace('scheduler = "pause"', 'scheduler = "asha"'),
                    encoding="utf-8")
    with pytest.raises(UserInputError, match=r"project.toml: key 'final.scheduler': must be one of"):
        load_project(folder)
