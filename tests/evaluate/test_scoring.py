"""The five metrics, the total and the best epoch, on real (tiny, random-weight) CLIP embeddings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from orchestrator.common.errors import UserInputError
from orchestrator.evaluate import (
    METRICS,
    EpochScore,
    LinearRule,
    choose_best,
    evaluate_run,
    load_evaluation_config,
    with_overrides,
)
from orchestrator.evaluate._metrics import technical_quality
from orchestrator.vision import EmbeddingCache, measure_image
from tests.evaluate.fake_run import black, make_run


def test_linear_rule_maps_ends_to_zero_and_one_and_clamps():
    rule = LinearRule(0.2, 0.4)
    assert [rule.apply(x) for x in (0.1, 0.2, 0.3, 0.4, 0.9)] == pytest.approx([0, 0, 0.5, 1, 1])
    decreasing = LinearRule(0.3, 0.0)
    assert decreasing.apply(0.0) == 1.0 and decreasing.apply(0.3) == 0.0
    assert rule.apply(float("nan")) == 0.0
    with pytest.raises(ValueError):
        LinearRule(1.0, 1.0)


def test_default_weights_add_up_to_one_and_bad_weights_are_refused(tmp_path: Path):
    config = load_evaluation_config()
    assert set(config.weights) == set(METRICS)
    assert sum(config.weights.values()) == pytest.approx(1.0)
    assert config.weights == {"identity": 0.4, "character_variety": 0.2, "style_consistency": 0.2,
                              "prompt_adherence": 0.1, "technical_quality": 0.1}
    with pytest.raises(UserInputError, match="add up to 1.1"):
        with_overrides(config, {"weights": {"identity": 0.5}})
    user = tmp_path / "eval.toml"
    user.write_text("[weights]\nidentiy = 0.4\n")
    with pytest.raises(UserInputError, match="identiy"):
        load_evaluation_config(user)


def test_identical_images_give_identity_one(tmp_path: Path, tiny_encoder):
    run = make_run(tmp_path, epochs=(2,))
    reference = run.references / "ref_0.png"
    for other in run.references.glob("*.png"):
        if other != reference:
            other.unlink()
    for index in range(3):
        shutil.copy(reference, run.sample_path(2, index))
    result = evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder, cache_dir=tmp_path / "c")
    score = result.epochs[2]
    assert [image.identity for image in score.images] == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)
    assert score.metrics["identity"] == pytest.approx(1.0, abs=1e-5)
    # Three identical samples: the set has no variety at all and is reported as collapsed.
    assert score.metrics["character_variety"] == pytest.approx(0.0, abs=1e-5)
    assert any("collapse" in w for w in score.warnings)
    assert "collapse" in score.failed_gates


def test_sample_identical_to_a_training_image_is_flagged_as_copying(tmp_path: Path, tiny_encoder):
    run = make_run(tmp_path, epochs=(2,))
    shutil.copy(run.train_images / "frame_1.png", run.sample_path(2, 1))
    score = evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder,
                         cache_dir=tmp_path / "c").epochs[2]
    flagged = {image.prompt_index: image for image in score.images if image.copied}
    assert list(flagged) == [1]
    assert flagged[1].nearest_training_image.endswith("frame_1.png")
    assert flagged[1].nearest_training_similarity == pytest.approx(1.0, abs=1e-5)
    assert any(w.startswith("copying: 1 sample") for w in score.warnings)


def test_all_black_sample_scores_zero_technical_quality(tmp_path: Path, tiny_encoder):
    config = load_evaluation_config()
    value, _, flags = technical_quality(measure_image(black()), config.technical)
    assert value == 0.0 and "black" in flags
    grey_value, _, grey_flags = technical_quality(measure_image(Image.new("RGB", (64, 64), (128, 128, 128))),
                                                  config.technical)
    assert grey_value == 0.0 and grey_flags == ["blank"]
    run = make_run(tmp_path, epochs=(2,), images=lambda e, i: black() if i == 0 else None)
    from orchestrator.vision.synthetic import synthetic_scene
    for index in (1, 2):
        synthetic_scene(index, (64, 64)).save(run.sample_path(2, index))
    score = evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder,
                         cache_dir=tmp_path / "c").epochs[2]
    by_index = {image.prompt_index: image for image in score.images}
    assert by_index[0].technical == 0.0
    assert by_index[1].technical > 0.0
    assert any("black/blank samples" in w for w in score.warnings)


def test_total_is_the_weighted_sum_and_best_epoch_is_the_earliest_within_the_noise_of_the_argmax(
        tmp_path: Path, tiny_encoder):
    run = make_run(tmp_path, epochs=(2, 4, 6))
    result = evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder, cache_dir=tmp_path / "c")
    weights = result.config.weights
    for score in result.epochs.values():
        assert score.total == pytest.approx(sum(weights[m] * score.metrics[m] for m in METRICS))
        low, high = score.interval
        assert low <= score.total <= high
    argmax = max(result.epochs.values(), key=lambda s: s.total)
    within = [e for e, s in sorted(result.epochs.items()) if s.interval[1] >= argmax.interval[0]]
    assert result.best.leader == argmax.epoch and result.best.epoch == within[0]
    best = json.loads(result.best_path.read_text())
    assert best["epoch"] == within[0] and best["within_noise"] == within
    assert best["checkpoint"] == result.epochs[within[0]].checkpoint
    assert best["runner_up"]["epoch"] != best["epoch"]


def test_choose_best_prefers_checkpointed_epochs_and_earlier_ties():
    weights = load_evaluation_config().weights

    def epoch(number, total, checkpoint="ckpt"):
        return EpochScore(number, {m: total for m in METRICS}, {}, total, [], [], checkpoint)

    scores = {2: epoch(2, 0.5), 4: epoch(4, 0.7), 6: epoch(6, 0.7), 8: epoch(8, 0.9, checkpoint=None)}
    best = choose_best(scores, weights)
    assert (best.epoch, best.runner_up) == (4, 6)
    assert "Tied" in best.reason
    assert choose_best(scores, weights, require_checkpoint=False).epoch == 8
    assert choose_best({2: epoch(2, None)}, weights) is None


def test_rescoring_from_the_cache_gives_identical_numbers_without_model_work(tmp_path: Path, tiny_encoder):
    run = make_run(tmp_path, epochs=(2, 4))
    first = evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder, cache_dir=tmp_path / "c")
    first_json = json.loads(first.scores_path.read_text())
    with EmbeddingCache(tmp_path / "c") as cache:
        cached_rows = cache.count()
    second = evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder, cache_dir=tmp_path / "c")
    second_json = json.loads(second.scores_path.read_text())
    assert second_json["epochs"] == first_json["epochs"]
    with EmbeddingCache(tmp_path / "c") as cache:
        assert cache.count() == cached_rows


def test_scoring_one_epoch_keeps_the_other_epochs_in_scores_json(tmp_path: Path, tiny_encoder):
    run = make_run(tmp_path, epochs=(2, 4))
    evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder, cache_dir=tmp_path / "c")
    result = evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder,
                          cache_dir=tmp_path / "c", epochs=[4])
    assert sorted(result.epochs) == [2, 4]
    assert sorted(json.loads(result.scores_path.read_text())["epochs"]) == ["2", "4"]


def test_corrupt_image_is_skipped_and_the_rest_is_scored(tmp_path: Path, tiny_encoder):
    run = make_run(tmp_path, epochs=(2,))
    run.sample_path(2, 1).write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    result = evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder, cache_dir=tmp_path / "c")
    score = result.epochs[2]
    assert [image.prompt_index for image in score.images] == [0, 2]
    assert any("unreadable sample image" in w and "_01_" in w for w in score.warnings)
    assert score.total is not None


def test_samples_and_checkpoints_that_do_not_match_are_reported(tmp_path: Path, tiny_encoder):
    run = make_run(tmp_path, epochs=(2, 4), checkpoints=(4, 6))
    (run.run_dir / "luca-000006.safetensors").write_bytes(b"w")
    (run.run_dir / "sample" / "luca_final.png").write_bytes(b"x")
    result = evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder, cache_dir=tmp_path / "c")
    text = "\n".join(result.problems)
    assert "epoch(s) [2] have no checkpoint" in text
    assert "epoch(s) [6] have no samples" in text
    assert "luca_final.png" in text
    assert result.epochs[2].checkpoint is None and result.best.epoch == 4


def test_short_prompt_file_scores_adherence_only_where_a_prompt_exists(tmp_path: Path, tiny_encoder):
    run = make_run(tmp_path, epochs=(2,), prompts="only one prompt --d 1\n")
    result = evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder, cache_dir=tmp_path / "c")
    assert any("has 1 prompt(s) but samples use index up to 2" in p for p in result.problems)
    images = result.epochs[2].images
    assert [image.clip_t is not None for image in images] == [True, False, False]
    assert result.epochs[2].metrics["prompt_adherence"] is not None


def test_run_without_samples_writes_partial_results_and_says_why(tmp_path: Path, tiny_encoder):
    run = make_run(tmp_path, epochs=())
    result = evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder, cache_dir=tmp_path / "c")
    assert result.epochs == {} and result.best is None
    assert any("no sample images" in p for p in result.fatal)
    assert json.loads(result.best_path.read_text())["epoch"] is None


def test_empty_reference_folder_scores_the_rest_but_no_total(tmp_path: Path, tiny_encoder):
    run = make_run(tmp_path, epochs=(2,))
    for path in run.references.glob("*.png"):
        path.unlink()
    result = evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder, cache_dir=tmp_path / "c")
    score = result.epochs[2]
    assert score.metrics["identity"] is None and score.total is None
    assert score.metrics["technical_quality"] is not None
    assert any("no readable images" in p for p in result.fatal)
    saved = json.loads(result.scores_path.read_text())
    assert saved["epochs"]["2"]["metrics"]["character_variety"] is not None
    with pytest.raises(UserInputError, match="reference folder not found"):
        evaluate_run(run.run_dir, references=tmp_path / "nope", encoder=tiny_encoder, cache_dir=tmp_path / "c")


def test_nan_loss_in_run_record_is_a_warning_on_later_epochs(tmp_path: Path, tiny_encoder):
    record = {"summary": {"epochs": 4}, "losses": [
        {"step": 1, "epoch": 1, "avr_loss": 0.2}, {"step": 7, "epoch": 3, "avr_loss": "nan"}]}
    run = make_run(tmp_path, epochs=(2, 4), record=record)
    result = evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder, cache_dir=tmp_path / "c")
    assert not any("NaN loss" in w for w in result.epochs[2].warnings)
    assert any("NaN loss from step 7" in w for w in result.epochs[4].warnings)


def test_unreadable_run_record_does_not_stop_evaluation(tmp_path: Path, tiny_encoder):
    run = make_run(tmp_path, epochs=(2,))
    (run.run_dir / "run.json").write_text("{not json")
    result = evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder, cache_dir=tmp_path / "c")
    assert any("unreadable run record" in p for p in result.problems)
    assert result.epochs[2].total is not None
    assert Image.open(run.sample_path(2, 0)).size == (64, 64)


def test_dinov2_backbone_scores_identity_in_its_own_space(tmp_path: Path, tiny_encoder):
    run = make_run(tmp_path, epochs=(2,))
    reference = run.references / "ref_0.png"
    (run.references / "ref_1.png").unlink()
    shutil.copy(reference, run.sample_path(2, 0))
    config = with_overrides(load_evaluation_config(), {"identity": {"backbone": "dinov2", "dino_weights": "random"}})
    result = evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder, config=config,
                          cache_dir=tmp_path / "c")
    images = {image.prompt_index: image for image in result.epochs[2].images}
    assert images[0].identity == pytest.approx(1.0, abs=1e-5)
    assert images[1].identity_similarity < 0.999
    saved = json.loads(result.scores_path.read_text())
    assert "+ identity dinov2:" in saved["encoder"]
    assert "DINOv2 image-image" in saved["config"]["rules"]["identity"]
    with pytest.raises(UserInputError, match="unknown backbone"):
        with_overrides(config, {"identity": {"backbone": "siglip"}})


def test_dinov2_weights_that_cannot_be_fetched_offline_give_a_clear_error(tmp_path: Path, monkeypatch):
    from orchestrator.evaluate._dino import load_dino

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(UserInputError, match="could not load DINOv2 weights 'facebook/dinov2-small'"):
        load_dino("facebook/dinov2-small")
