"""The trainer's argv: a list, never a shell string."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.common.errors import UserInputError
from orchestrator.kohya.command import (
    build_training_command,
    newest_state_dir,
    parse_gpus,
    resume_step_offset,
)

HOSTILE = "out dir 'q\" $(touch pwned); `x`"


def test_single_gpu_argv_runs_the_script_with_the_config_and_simple_logging(tmp_path):
    config = tmp_path / HOSTILE / "training.toml"
    command = build_training_command(trainer_python="/venv/bin/python", sd_scripts=tmp_path / "sd",
                                     script_name="train_network.py", config_file=config, gpus=[1])
    assert command.argv == ["/venv/bin/python", str(tmp_path / "sd" / "train_network.py"), "--config_file",
                            str(config), "--console_log_simple"]
    assert command.cwd == tmp_path / "sd"
    assert command.env["CUDA_VISIBLE_DEVICES"] == "1" and command.env["PYTHONUNBUFFERED"] == "1"


def test_several_gpus_go_through_accelerate_launch(tmp_path):
    command = build_training_command(trainer_python="py", sd_scripts=tmp_path, script_name="sdxl_train_network.py",
                                     config_file=tmp_path / "t.toml", gpus=[2, 3])
    assert command.argv[:3] == ["py", "-m", "accelerate.commands.launch"]
    assert command.argv[command.argv.index("--num_processes") + 1] == "2"
    assert command.argv[command.argv.index("--gpu_ids") + 1] == "0,1"  # renumbered by CUDA_VISIBLE_DEVICES
    assert command.env["CUDA_VISIBLE_DEVICES"] == "2,3"
    assert str(tmp_path / "sdxl_train_network.py") in command.argv


def test_resume_passes_the_state_folder(tmp_path):
    state = tmp_path / "tiny-000001-state"
    command = build_training_command(trainer_python="py", sd_scripts=tmp_path, script_name="train_network.py",
                                     config_file=tmp_path / "t.toml", resume_state=state)
    assert command.argv[-2:] == ["--resume", str(state)]


@pytest.mark.parametrize("text", ["a", "0,,x", "-1", "1,1"])
def test_bad_gpu_lists_are_user_errors(text):
    with pytest.raises(UserInputError):
        parse_gpus(text)


def test_gpu_list_parses():
    assert parse_gpus("0, 1") == [0, 1] and parse_gpus(None) is None and parse_gpus("") is None


def _state(folder: Path, epoch: int, step: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "train_state.json").write_text(json.dumps({"current_epoch": epoch, "current_step": step}))
    return folder


def test_newest_state_is_the_one_with_the_most_steps(tmp_path):
    _state(tmp_path / "tiny-000001-state", 1, 3)
    last = _state(tmp_path / "tiny-state", 3, 9)
    _state(tmp_path / "tiny-000002-state", 2, 6)
    assert newest_state_dir(tmp_path, "tiny") == last
    assert resume_step_offset(last) == 9
    assert newest_state_dir(tmp_path, "other") is None
