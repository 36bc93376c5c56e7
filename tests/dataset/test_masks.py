"""Masks for masked-loss training: crop's masks reach the kohya folder as the images' alpha, and the rendered
sd-scripts files turn masked loss on, in a form the contract accepts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from orchestrator.cli import main
from orchestrator.common.tomlfile import read_toml
from orchestrator.config.paths import ProjectPaths, load_paths
from orchestrator.crop import CropConfig, crop_frames
from orchestrator.dataset import prepare_kohya_dataset, validate_kohya_dataset
from orchestrator.kohya.check import check_config_file, validate_rendered
from orchestrator.kohya.render import render_run
from orchestrator.vision.synthetic import synthetic_scene
from tests.crop.conftest import TruthDetector, palette_embed

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INSET = 0.2  # the known mask: the detected box without this fraction of its size on each side


class InsetBoxSegmenter:
    """A segmenter whose answer is known: the inner part of the box."""

    identity = "inset-box"

    def segment(self, image: Image.Image, box) -> np.ndarray:
        mask = np.zeros((image.height, image.width), dtype=bool)
        dx, dy = box.width * INSET, box.height * INSET
        mask[round(box.y0 + dy):round(box.y1 - dy), round(box.x0 + dx):round(box.x1 - dx)] = True
        return mask


@pytest.fixture(scope="module")
def masked_crops(film_frames, tmp_path_factory):
    out = tmp_path_factory.mktemp("masked_crops")
    result = crop_frames(film_frames["frames_dir"], film_frames["references"], out,
                         detector=TruthDetector(film_frames["by_pixels"]), embed=palette_embed,
                         segmenter=InsetBoxSegmenter(), config=CropConfig(identity_threshold=0.5, min_side=96),
                         progress=False)
    assert result.kept
    for record in result.kept:  # the caption stage's output, for the dataset checks
        (out / record["file"]).with_suffix(".txt").write_text("toyhero boy, a 3d character\n", encoding="utf-8")
    return result


def _paths(tmp_path: Path, dataset_dir: Path) -> ProjectPaths:
    model = tmp_path / "models" / "sd15.safetensors"
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(b"not a real model")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("toyhero boy, smiling --w 512 --h 512 --d 1\n", encoding="utf-8")
    return load_paths(PROJECT_ROOT).with_overrides(
        dataset_dir=dataset_dir, output_root=tmp_path / "outputs", prompts_file=prompts,
        base_model_sd15=str(model), base_model_sdxl=str(model), tokenizer_cache_dir="")


def test_prepared_images_carry_the_alpha_the_mask_says(masked_crops, tmp_path):
    prepared = prepare_kohya_dataset(masked_crops.out_dir, tmp_path / "kohya", repeats=5, name="toyhero")
    assert prepared.masked == prepared.images == len(masked_crops.kept)
    assert [p.name for p in prepared.skipped] == ["manifest.jsonl", "summary.json"]
    for record in masked_crops.kept:
        with Image.open(prepared.folder / record["file"]) as image:
            assert image.mode == "RGBA"
            alpha = np.asarray(image)[:, :, 3].astype(int)
        # The known mask, in the crop's pixels: inside the inset box fully trained, away from the box ignored.
        x0, y0 = record["crop_box"][:2]
        bx0, by0, bx1, by1 = (v - o for v, o in zip(record["box"], (x0, y0, x0, y0), strict=True))
        dx, dy = (bx1 - bx0) * INSET, (by1 - by0) * INSET
        inner = alpha[round(by0 + dy) + 1:round(by1 - dy) - 1, round(bx0 + dx) + 1:round(bx1 - dx) - 1]
        assert inner.size and (inner == 255).all()
        grow = 0.1 * min(alpha.shape)
        outside = np.ones_like(alpha, dtype=bool)
        outside[max(0, round(by0 - grow)):round(by1 + grow), max(0, round(bx0 - grow)):round(bx1 + grow)] = False
        assert (alpha[outside] == 0).all()
        assert alpha.mean() / 255 == pytest.approx(record["mask"]["fraction"], abs=1e-3)
    report = validate_kohya_dataset(tmp_path / "kohya")
    assert report.ok and report.subsets[0].masked == report.images


def test_render_sets_alpha_mask_and_masked_loss_and_the_contract_accepts_them(masked_crops, tmp_path):
    prepare_kohya_dataset(masked_crops.out_dir, tmp_path / "kohya", repeats=5, name="toyhero")
    rendered = render_run("luca_final_v1_pure", paths=_paths(tmp_path, tmp_path / "kohya"), run_dir=tmp_path / "run")
    dataset = read_toml(rendered.dataset_config_file)
    [subset] = dataset["datasets"][0]["subsets"]
    assert subset["alpha_mask"] is True and subset["image_dir"].endswith("5_toyhero")
    training = read_toml(rendered.config_file)
    assert {k: v for table in training.values() for k, v in table.items()}["masked_loss"] is True
    assert validate_rendered(rendered) == []
    assert check_config_file(rendered.config_file) == []  # the written files, read back as sd-scripts would


def test_a_dataset_without_masks_renders_without_them_and_the_preset_can_turn_them_off(masked_crops, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    for index in range(2):
        synthetic_scene(index, (64, 48)).save(plain / f"frame_{index}.png")
        (plain / f"frame_{index}.txt").write_text("toyhero boy\n", encoding="utf-8")
    prepared = prepare_kohya_dataset(plain, tmp_path / "kohya", repeats=2, name="plain")
    assert prepared.masked == 0
    paths = _paths(tmp_path, tmp_path / "kohya")
    rendered = render_run("luca_final_v1_pure", paths=paths, run_dir=tmp_path / "run")
    assert "alpha_mask" not in rendered.dataset["datasets"][0]["subsets"][0]
    assert "masked_loss" not in rendered.training

    prepare_kohya_dataset(masked_crops.out_dir, tmp_path / "kohya", repeats=2, name="plain", overwrite=True)
    off = render_run("luca_final_v1_pure", paths=paths, run_dir=tmp_path / "run2",
                     overrides={"dataset.alpha_mask": False})
    assert off.dataset["datasets"][0]["subsets"][0]["alpha_mask"] is False and "masked_loss" not in off.training
    assert validate_rendered(off) == []


def test_cli_prepare_says_how_many_images_carry_a_mask(masked_crops, tmp_path, capsys):
    assert main(["dataset", "prepare", str(masked_crops.out_dir), "--out", str(tmp_path / "kohya"),
                 "--name", "toyhero", "--validate"]) == 0
    output = capsys.readouterr().out
    count = len(masked_crops.kept)
    assert f"{count} of {count} images carry a mask" in output
    assert main(["dataset", "validate", str(tmp_path / "kohya"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["subsets"][0]["masked"] == count
