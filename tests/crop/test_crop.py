"""`crop`: identity decides which box is the character; crops have a margin, a bucket shape, a minimum size;
masks become alpha; the real detector and segmenter run (tiny, random) through the same code."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from orchestrator.cli import main
from orchestrator.crop import (
    BUCKET_ASPECTS,
    NOT_FOUND,
    Box,
    CropConfig,
    build_random_owlv2,
    build_random_sam,
    crop_frames,
    plan_crop,
)
from tests.crop.conftest import TruthDetector, palette_embed

CONFIG = CropConfig(identity_threshold=0.5, min_side=96)


def _iou(a: list[float], b: list[float]) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


@pytest.fixture(scope="module")
def truth_crops(film_frames, tmp_path_factory):
    out = tmp_path_factory.mktemp("crops")
    return crop_frames(film_frames["frames_dir"], film_frames["references"], out,
                       detector=TruthDetector(film_frames["by_pixels"]), embed=palette_embed, config=CONFIG,
                       progress=False)


def _truth_of(film_frames, record) -> dict:
    line = next(line for line in film_frames["lines"] if line["file"] == record["frame"])
    return film_frames["truth"]["boxes"][str(line["frame"])]


def test_identity_chooses_the_hero_over_a_more_confident_stranger(truth_crops, film_frames):
    both = [r for r in truth_crops.records if set(_truth_of(film_frames, r)) == {"hero", "stranger"}]
    assert both, "the toy film has shots with both characters"
    for record in both:
        assert record["verdict"] == "kept", record
        assert _iou(record["box"], _truth_of(film_frames, record)["hero"]) > 0.95
        stranger = next(c for c in record["candidates"] if c["detector_score"] == 0.9)
        assert not stranger["passed"] and stranger["identity"] < record["identity"]


def test_a_frame_without_the_hero_is_dropped_as_character_not_found(truth_crops, film_frames):
    alone = [r for r in truth_crops.records if set(_truth_of(film_frames, r)) == {"stranger"}]
    assert alone
    assert all(r["verdict"] == "dropped" and r["reason"].startswith(NOT_FOUND) and r["file"] is None for r in alone)
    assert sum(truth_crops.summary["dropped"].values()) == len(alone)  # every frame with the hero gave a crop


def test_every_frame_has_a_manifest_line_with_box_scores_and_reason(truth_crops, film_frames):
    lines = [json.loads(line) for line in (truth_crops.out_dir / "manifest.jsonl").read_text().splitlines()]
    assert [line["frame"] for line in lines] == sorted(line["file"] for line in film_frames["lines"])
    for line in lines:
        assert line["reason"] and line["candidates"] and "video" in line and "shot" in line
        if line["verdict"] == "kept":
            assert {"box", "crop_box", "identity", "detector_score"} <= set(line)
            assert (truth_crops.out_dir / line["file"]).is_file()


def test_crops_hold_the_box_with_a_margin_in_a_bucket_shape(truth_crops):
    for record in truth_crops.kept:
        box, crop = record["box"], record["crop_box"]
        width, height = crop[2] - crop[0], crop[3] - crop[1]
        assert min(width, height) >= CONFIG.min_side
        assert min(abs(width / height - aspect) for aspect in BUCKET_ASPECTS) < 0.02
        assert crop[0] <= box[0] and crop[1] <= box[1] and crop[2] >= box[2] and crop[3] >= box[3]
        with Image.open(truth_crops.out_dir / record["file"]) as image:
            assert image.size == (width, height) and image.mode == "RGB"


def test_two_passing_boxes_give_one_crop_with_the_best(film_frames, tmp_path):
    result = crop_frames(film_frames["frames_dir"], film_frames["references"], tmp_path,
                         detector=TruthDetector(film_frames["by_pixels"], duplicate_hero=True), embed=palette_embed,
                         config=CONFIG, progress=False)
    kept = result.kept
    assert kept and all("boxes passed, kept the best" in r["reason"] for r in kept)
    assert len(list(tmp_path.glob("*.png"))) == len(kept)
    for record in kept:
        passing = [c for c in record["candidates"] if c["passed"]]
        assert len(passing) >= 2 and record["identity"] == max(c["identity"] for c in passing)


@pytest.mark.parametrize(("box", "frame", "expected"), [
    (Box(100, 50, 140, 150), (640, 360), "inside"),  # small, tall: grows to the minimum, tall bucket
    (Box(0, 0, 630, 350), (640, 360), "inside"),  # fills the frame: the largest shape that fits
    (Box(600, 300, 640, 360), (640, 360), "inside"),  # at a corner: shifted inside, not shrunk
])
def test_plan_crop_fits_the_frame_with_a_bucket_shape(box, frame, expected):
    crop = plan_crop(box, *frame, margin=0.15, min_side=128)
    assert crop is not None
    assert 0 <= crop.x0 and 0 <= crop.y0 and crop.x1 <= frame[0] and crop.y1 <= frame[1]
    assert min(crop.width, crop.height) >= 128 - 1
    assert min(abs(crop.width / crop.height - a) for a in BUCKET_ASPECTS) < 0.02
    assert plan_crop(box, 100, 100, min_side=128) is None


def test_masks_become_the_alpha_channel(film_frames, tmp_path):
    class EllipseSegmenter:
        identity = "ellipse"

        def segment(self, image, box):
            yy, xx = np.mgrid[0:image.height, 0:image.width]
            cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
            return ((xx - cx) / (box.width / 2)) ** 2 + ((yy - cy) / (box.height / 2)) ** 2 <= 1

    result = crop_frames(film_frames["frames_dir"], film_frames["references"], tmp_path,
                         detector=TruthDetector(film_frames["by_pixels"]), embed=palette_embed,
                         segmenter=EllipseSegmenter(), config=CONFIG, progress=False)
    record = result.kept[0]
    with Image.open(tmp_path / record["file"]) as image:
        assert image.mode == "RGBA"
        alpha = np.asarray(image)[:, :, 3]
    assert alpha[0, 0] == 0 and alpha[alpha.shape[0] // 2, alpha.shape[1] // 2] == 255
    assert record["mask"]["source"] == "segmenter" and 0.1 < record["mask"]["fraction"] < 0.9
    assert result.summary["masks"] == len(result.kept)


def test_tiny_random_owlv2_sam_and_clip_run_the_real_code_path(film_frames, tmp_path):
    from orchestrator.vision import load_clip

    encoder = load_clip("tiny-clip", "random")
    config = CropConfig(identity_threshold=-1.0, min_side=96, batch_size=4)
    result = crop_frames(film_frames["frames_dir"], film_frames["references"], tmp_path / "out",
                         detector=build_random_owlv2(tmp_path / "tokenizer"), embed=encoder.embed_images,
                         segmenter=build_random_sam(), config=config, progress=False)
    assert len(result.records) == len(film_frames["lines"])
    assert result.kept, "with the threshold off every frame with a usable box is kept"
    with Image.open(result.out_dir / result.kept[0]["file"]) as image:
        assert image.mode == "RGBA" and min(image.size) >= 96
    assert result.summary["detector"].startswith("owlv2:tiny") and result.summary["segmenter"].startswith("sam:")


def test_cli_crop_writes_crops_and_names_a_missing_model_folder(film_frames, tmp_path, capsys):
    common = [str(film_frames["frames_dir"]), "--references", str(film_frames["references"]),
              "--clip-model", "tiny-clip", "--clip-weights", "random", "--threshold", "-1", "--min-side", "96",
              "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert main(["crop", *common, "--out", str(tmp_path / "crops"), "--masks"]) == 0
    assert "frames →" in capsys.readouterr().out
    missing = tmp_path / "no-such-owlv2"
    assert main(["crop", *common, "--out", str(tmp_path / "crops2"), "--detector", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_detector_inputs_are_the_processors_own_with_queries_tokenized_once(tmp_path):
    """The detector makes OWLv2's square itself (OpenCV) and tokenizes the queries once: at the model's size
    the tensors equal the processor's, and any size gives the same layout."""
    import torch

    detector = build_random_owlv2(tmp_path / "tokenizer")
    rng = np.random.default_rng(0)
    queries = ["an animated character", "curly brown hair"]
    side = detector.model.config.vision_config.image_size
    square = [Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)) for _ in range(3)]
    ours = detector.inputs(square, queries)
    theirs = detector.processor(text=[queries] * 3, images=square, return_tensors="pt", padding="max_length",
                                truncation=True, max_length=detector.model.config.text_config.max_position_embeddings)
    assert set(ours) == set(theirs)
    assert all(torch.allclose(ours[k].float(), theirs[k].float(), atol=1e-5) for k in theirs)
    wide = [Image.fromarray(rng.integers(0, 255, (90, 200, 3), dtype=np.uint8))]
    pixels = detector.inputs(wide, queries)["pixel_values"]
    assert pixels.shape == (1, 3, side, side)
    assert len(detector._tokens) == 1  # the same queries: tokenized once for every batch
