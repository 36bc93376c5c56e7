"""sd-scripts' output file names and prompt syntax, read back as our objects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.common.errors import UserInputError
from orchestrator.kohya.outputs import (
    find_checkpoints,
    find_samples,
    find_state_dirs,
    parse_prompt_line,
    parse_prompt_text,
    parse_sample_name,
    read_prompt_file,
    read_run_config,
)


def test_epoch_sample_name_gives_epoch_index_and_seed():
    sample = parse_sample_name("luca_v1_e000004_07_20260101120000_1234.png", "luca_v1")
    assert (sample.epoch, sample.step, sample.prompt_index, sample.seed) == (4, None, 7, 1234)
    assert sample.timestamp == "20260101120000"


def test_step_based_and_seedless_sample_names_parse():
    sample = parse_sample_name("luca_000120_03_20260101120000.png", "luca")
    assert (sample.epoch, sample.step, sample.prompt_index, sample.seed) == (None, 120, 3, None)


def test_sample_without_output_name_prefix_parses_when_name_unknown():
    sample = parse_sample_name("e000002_00_20260101120000_5.png")
    assert (sample.epoch, sample.prompt_index, sample.seed) == (2, 0, 5)


@pytest.mark.parametrize("name", ["other_e000001_00_20260101120000_1.png", "luca_e1_00_2026.png", "luca.png"])
def test_names_of_another_run_or_malformed_do_not_parse(name):
    assert parse_sample_name(name, "luca") is None


def test_find_samples_keeps_newest_resample_and_reports_unparsed(tmp_path: Path):
    folder = tmp_path / "sample"
    folder.mkdir()
    for name in ["luca_e000002_00_20260101120000_1.png", "luca_e000002_00_20260101130000_1.png",
                 "luca_e000002_01_20260101120000_1.png", "notes.png"]:
        (folder / name).write_bytes(b"x")
    samples, unparsed = find_samples(tmp_path, "luca")
    assert [(s.epoch, s.prompt_index, s.timestamp) for s in samples] == [
        (2, 0, "20260101130000"), (2, 1, "20260101120000")]
    assert [p.name for p in unparsed] == ["notes.png"]


def test_final_checkpoint_is_the_last_epoch_from_train_state(tmp_path: Path):
    for name in ["luca-000002.safetensors", "luca-000004.safetensors", "luca.safetensors",
                 "luca-step00000010.safetensors", "other-000002.safetensors"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "luca-state").mkdir()
    (tmp_path / "luca-state" / "train_state.json").write_text(json.dumps({"current_epoch": 6, "current_step": 60}))
    (tmp_path / "luca-000002-state").mkdir()
    checkpoints = find_checkpoints(tmp_path, "luca")
    assert [(c.path.name, c.epoch, c.step, c.is_final) for c in checkpoints] == [
        ("luca-step00000010.safetensors", None, 10, False),
        ("luca-000002.safetensors", 2, None, False),
        ("luca-000004.safetensors", 4, None, False),
        ("luca.safetensors", 6, None, True),
    ]
    assert find_checkpoints(tmp_path, "luca", last_epoch=8)[-1].epoch == 8
    assert set(find_state_dirs(tmp_path, "luca")) == {"last", "e000002"}


def test_prompt_options_are_stripped_and_typed():
    prompt = parse_prompt_line(
        "luca, boy, close-up --n blurry, lowres --w 512 --h 768 --d 42 --s 2000 --l 7.5 --ss euler_a", 3)
    assert prompt.text == "luca, boy, close-up"
    assert (prompt.negative, prompt.width, prompt.height, prompt.seed) == ("blurry, lowres", 512, 768, 42)
    assert (prompt.steps, prompt.cfg_scale, prompt.sampler, prompt.index) == (1000, 7.5, "euler_a", 3)


def test_prompt_indices_skip_comments_and_blank_lines_like_sd_scripts():
    prompts = parse_prompt_text("# header\n\nfirst --d 1\n  \nsecond\n#third\n")
    assert [(p.index, p.text, p.seed) for p in prompts] == [(0, "first", 1), (1, "second", None)]


def test_prompt_file_errors_are_user_errors(tmp_path: Path):
    empty = tmp_path / "p.txt"
    empty.write_text("# only a comment\n")
    with pytest.raises(UserInputError, match="no prompts"):
        read_prompt_file(empty)
    with pytest.raises(UserInputError, match="not found"):
        read_prompt_file(tmp_path / "missing.txt")


def test_run_config_gives_output_name_prompts_and_training_image_dirs(tmp_path: Path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "training.toml").write_text(
        '[model]\noutput_name = "luca"\n[sampling]\nsample_prompts = "/p/prompts.txt"\n')
    (tmp_path / "config" / "dataset.toml").write_text(
        '[general]\nresolution = 512\n[[datasets]]\n[[datasets.subsets]]\nimage_dir = "/d/10_luca"\n'
        '[[datasets.subsets]]\nimage_dir = "/d/reg"\nis_reg = true\n')
    facts = read_run_config(tmp_path)
    assert facts.output_name == "luca"
    assert facts.sample_prompts == Path("/p/prompts.txt")
    assert facts.training_image_dirs == (Path("/d/10_luca"),)
