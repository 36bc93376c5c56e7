"""Validation loss turned on by a preset key or --set: the keys sd-scripts reads, and the held-out images."""

from __future__ import annotations

import ast
import logging
import math
import os
import random
import typing
from pathlib import Path

import pytest

from orchestrator.common.errors import UserInputError
from orchestrator.common.tomlfile import read_toml
from orchestrator.kohya.check import validate_rendered
from orchestrator.kohya.render import render_run
from orchestrator.kohya.validation import (
    dataset_validation,
    exact_share,
    latest_validation_loss,
    split_images,
)

SHARED_EXPORT = Path("/work/shared/sd-scripts-48d368fa")


def _sd_scripts_split_train_val():
    """sd-scripts' own ``split_train_val``, compiled from its source (the module itself needs torch)."""
    candidates = [Path(os.environ["LORA_PIPELINE_SD_SCRIPTS"])] if os.environ.get("LORA_PIPELINE_SD_SCRIPTS") else []
    candidates += [Path(__file__).resolve().parents[2] / "sd-scripts", SHARED_EXPORT]
    source = next((c / "library" / "train_util.py" for c in candidates if (c / "library" / "train_util.py").is_file()),
                  None)
    if source is None:
        pytest.skip("no sd-scripts checkout to compare the split with")
    tree = ast.parse(source.read_text(encoding="utf-8"))
    function = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "split_train_val")
    namespace = {"math": math, "random": random, "logging": logging, "List": list,
                 "Optional": typing.Optional, "Tuple": tuple}
    exec(compile(ast.Module([function], []), str(source), "exec"), namespace)  # noqa: S102 - sd-scripts' code
    return namespace["split_train_val"]


@pytest.mark.parametrize(("count", "split", "seed"), [(4, 0.25, 1), (10, 0.3, 42), (37, 0.1, 7), (3, 0.5, 0),
                                                      (20, 0.15, 1234)])
def test_our_split_is_sd_scripts_split_for_the_same_seed(count, split, seed):
    reference = _sd_scripts_split_train_val()
    paths = [f"/data/10_luca/frame_{i:03d}.png" for i in range(count)]
    state = random.getstate()
    trained, _ = reference(list(paths), [None] * count, True, split, seed)
    validated, _ = reference(list(paths), [None] * count, False, split, seed)
    assert random.getstate() == state
    ours = split_images([Path(p) for p in paths], split, seed)
    assert [str(p) for p in ours.training] == trained
    assert [str(p) for p in ours.validation] == validated


def test_rounding_can_put_an_image_in_both_sets_and_it_then_counts_as_training():
    images = [Path(f"/d/{i}.png") for i in range(20)]
    split = split_images(images, 0.13, 42)  # training ceil(17.4) = 18, validation from 20 - round(2.6) = 17
    assert len(split.training) == 18 and len(split.validation) == 3
    assert len(split.in_both) == 1 and len(split.held_out) == 2
    assert not set(split.held_out) & set(split.training)
    clean = split_images(images, exact_share(20, 0.13), 42)
    assert len(clean.held_out) == 2 and not clean.in_both and len(clean.training) == 18


def _images(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        (folder / f"frame_{index:03d}.png").write_bytes(b"png")
        (folder / f"frame_{index:03d}.txt").write_text("luca")
    (folder / ".hidden.png").write_bytes(b"glob skips dot-files")


def test_a_set_validation_split_renders_dataset_keys_a_seed_and_the_sample_schedule(machine, tmp_path):
    _images(machine.dataset_dir / "10_luca", 20)
    rendered = render_run("luca_final_v1_pure", paths=machine, run_dir=tmp_path / "run",
                          overrides={"validation_split": 0.1})
    dataset = read_toml(rendered.dataset_config_file)
    assert dataset["general"]["validation_split"] == 0.1
    assert dataset["general"]["validation_seed"] == 42  # the preset's training seed
    training = read_toml(rendered.config_file)
    flat = {k: v for table in training.values() for k, v in table.items()}
    assert "validation_split" not in flat, "one place: the dataset config"
    assert flat["validate_every_n_epochs"] == 2  # = sample_every_n_epochs
    assert validate_rendered(rendered) == []
    held_out = dataset_validation(dataset, flat).held_out
    assert len(held_out) == 2 and all(p.parent == machine.dataset_dir / "10_luca" for p in held_out)


def test_a_preset_dataset_key_with_its_own_seed_and_schedule_is_kept(machine, tmp_path):
    _images(machine.dataset_dir / "10_luca", 10)
    rendered = render_run("luca_final_v1_pure", paths=machine, run_dir=tmp_path / "run",
                          overrides={"dataset.validation_split": 0.2, "dataset.validation_seed": 5,
                                     "validate_every_n_epochs": 1})
    assert rendered.dataset["general"]["validation_seed"] == 5
    assert rendered.training["validate_every_n_epochs"] == 1
    assert not rendered.warnings


def test_a_split_that_rounding_spoils_or_that_holds_nothing_out_is_warned_about(machine, tmp_path):
    _images(machine.dataset_dir / "10_luca", 8)
    rendered = render_run("luca_final_v1_pure", paths=machine, run_dir=tmp_path / "run",
                          overrides={"dataset.validation_split": 0.1})  # training ceil(7.2) = all 8
    assert any("in both the training and the validation set" in w and "= 0.15625 splits" in w
               for w in rendered.warnings)
    assert any("holds no image" in w for w in rendered.warnings)
    rendered = render_run("luca_final_v1_pure", paths=machine, run_dir=tmp_path / "run2",
                          overrides={"dataset.validation_split": 0.15625})
    assert not rendered.warnings


@pytest.mark.parametrize("value", [1.0, -0.1, "0.1", True])
def test_a_validation_split_outside_zero_to_one_is_refused(machine, tmp_path, value):
    with pytest.raises(UserInputError, match="validation_split"):
        render_run("luca_final_v1_pure", paths=machine, run_dir=tmp_path / "run",
                   overrides={"dataset.validation_split": value})


def test_no_validation_split_renders_no_validation_keys(machine, tmp_path):
    rendered = render_run("luca_final_v1_pure", paths=machine, run_dir=tmp_path / "run")
    assert "validation_seed" not in rendered.dataset["general"]
    assert "validate_every_n_epochs" not in rendered.training


def test_the_latest_validation_loss_at_or_before_an_epoch_is_reported():
    losses = [{"epoch": 2, "loss": 0.12}, {"epoch": 4, "loss": 0.11}]
    assert latest_validation_loss(losses, 1) is None
    assert latest_validation_loss(losses, 3) == 0.12
    assert latest_validation_loss(losses, 4) == 0.11
