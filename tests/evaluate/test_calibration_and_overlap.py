"""Calibration fallbacks (no epoch-0 samples, one reference, ceiling not above floor) and the three
reference-overlap modes (a reference that is a training image by content hash)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from orchestrator.common.errors import UserInputError
from orchestrator.evaluate import evaluate_run, load_evaluation_config, with_overrides
from tests.evaluate.fake_run import make_run


def _evaluate(run, tmp_path: Path, encoder, config=None):
    return evaluate_run(run.run_dir, references=run.references, encoder=encoder, config=config,
                        cache_dir=tmp_path / "c")


def test_without_epoch_zero_samples_the_floors_fall_back_to_the_fixed_rules(tmp_path: Path, tiny_encoder):
    run = make_run(tmp_path, epochs=(2, 4))
    result = _evaluate(run, tmp_path, tiny_encoder)
    identity = result.calibration["identity"]
    rule = result.config.identity.rule
    assert result.calibration.base_samples == 0
    assert "floor not measured (no epoch-0 samples" in identity.fallback
    assert (identity.floor, identity.ceiling) == (rule.low, rule.high)
    stored = json.loads(result.scores_path.read_text())["calibration"]["metrics"]["identity"]
    assert stored["fallback"] == identity.fallback and stored["floor"] == rule.low


def test_with_epoch_zero_samples_and_two_references_identity_is_measured(tmp_path: Path, tiny_encoder):
    run = make_run(tmp_path, epochs=(0, 2, 4))
    result = _evaluate(run, tmp_path, tiny_encoder,
                       with_overrides(load_evaluation_config(), {"calibration": {"min_span": 0.0}}))
    identity = result.calibration["identity"]
    assert result.calibration.base_samples == 3 and result.calibration.references == 2
    assert identity.fallback is None, identity.fallback
    assert 0 not in result.epochs  # the base model's samples calibrate, they are never a candidate
    assert result.best.epoch in (2, 4)


def test_a_single_reference_has_no_identity_ceiling_and_says_so(tmp_path: Path, tiny_encoder):
    run = make_run(tmp_path, epochs=(0, 2))
    sorted(run.references.glob("*.png"))[1].unlink()
    result = _evaluate(run, tmp_path, tiny_encoder)
    identity = result.calibration["identity"]
    assert "ceiling not measured (fewer than 2 references" in identity.fallback
    assert identity.ceiling == result.config.identity.rule.high


def test_a_ceiling_not_above_the_floor_falls_back_and_names_both_values(tmp_path: Path, tiny_encoder):
    run = make_run(tmp_path, epochs=(0, 2))
    config = with_overrides(load_evaluation_config(), {"calibration": {"min_span": 5.0}})
    result = _evaluate(run, tmp_path, tiny_encoder, config)
    identity = result.calibration["identity"]
    assert "is not above the floor" in identity.fallback and "min_span 5" in identity.fallback
    assert (identity.floor, identity.ceiling) == (config.identity.rule.low, config.identity.rule.high)
    for epoch in result.epochs.values():  # the fixed rule is what calibrates then
        raw = epoch.raw["identity_similarity"]
        assert epoch.metrics["identity"] == pytest.approx(identity.apply(raw))


def _overlapping_run(tmp_path: Path):
    run = make_run(tmp_path, epochs=(0, 2))
    training = sorted((tmp_path / "dataset" / "10_luca").glob("*.png"))[0]
    shutil.copyfile(training, run.references / "copied_frame.png")  # same bytes: same content hash
    return run


@pytest.mark.parametrize("mode", ["warn", "exclude"])
def test_a_reference_that_is_a_training_image_is_reported_and_kept_or_dropped(tmp_path: Path, tiny_encoder,
                                                                              mode: str):
    run = _overlapping_run(tmp_path)
    config = with_overrides(load_evaluation_config(), {"references": {"training_overlap": mode}})
    result = _evaluate(run, tmp_path, tiny_encoder, config)
    [problem] = [p for p in result.problems if "are training images" in p]
    assert "copied_frame.png" in problem and "same file content" in problem
    if mode == "warn":
        assert "kept" in problem and result.calibration.references == 3
    else:
        assert "dropped" in problem and result.calibration.references == 2


def test_refuse_mode_stops_before_writing_and_keeps_earlier_results(tmp_path: Path, tiny_encoder):
    run = _overlapping_run(tmp_path)
    (run.references / "copied_frame.png").rename(tmp_path / "held.png")
    _evaluate(run, tmp_path, tiny_encoder)
    before = (run.run_dir / "evaluation" / "scores.json").read_bytes()
    (tmp_path / "held.png").rename(run.references / "copied_frame.png")
    config = with_overrides(load_evaluation_config(), {"references": {"training_overlap": "refuse"}})
    with pytest.raises(UserInputError) as error:
        _evaluate(run, tmp_path, tiny_encoder, config)
    assert "copied_frame.png" in str(error.value) and "training_overlap" in str(error.value.key or "")
    assert (run.run_dir / "evaluation" / "scores.json").read_bytes() == before
