"""Images sd-scripts' validation split held out: never training images for the copying check, fair as
references; and the report shows each epoch's validation loss."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from orchestrator.evaluate import evaluate_run, write_report
from orchestrator.kohya.validation import sd_scripts_image_list, split_images
from tests.evaluate.fake_run import make_run
from tests.evaluate.test_report_facts import _parsed

SPLIT, SEED = 0.34, 1  # 3 frames: sd-scripts trains on 2 and validates on 1, none in both


def _split_run(tmp_path: Path, *, seed: int | None = SEED, record: dict | None = None):
    run = make_run(tmp_path, epochs=(0, 2), record=record)
    seed_line = f"validation_seed = {seed}\n" if seed is not None else ""
    (run.run_dir / "config" / "dataset.toml").write_text(
        f"[general]\nresolution = 64\nvalidation_split = {SPLIT}\n{seed_line}"
        f'[[datasets]]\n[[datasets.subsets]]\nimage_dir = "{run.train_images}"\n')
    split = split_images(sd_scripts_image_list(run.train_images), SPLIT, SEED)
    [held_out] = split.held_out
    return run, held_out, split.training


def test_a_sample_like_a_held_out_image_is_no_copy_but_one_like_a_training_image_is(tmp_path: Path, tiny_encoder):
    run, held_out, training = _split_run(tmp_path)
    shutil.copy(held_out, run.sample_path(2, 1))
    shutil.copy(training[0], run.sample_path(2, 2))
    score = evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder,
                         cache_dir=tmp_path / "c").epochs[2]
    assert [image.prompt_index for image in score.images if image.copied] == [2]
    assert all(held_out.name not in (image.nearest_training_image or "") for image in score.images)


def test_without_a_validation_seed_every_image_counts_as_training_and_the_report_says_why(tmp_path: Path,
                                                                                          tiny_encoder):
    run, held_out, _ = _split_run(tmp_path, seed=None)
    shutil.copy(held_out, run.sample_path(2, 1))
    result = evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder, cache_dir=tmp_path / "c")
    assert [image.prompt_index for image in result.epochs[2].images if image.copied] == [1]
    assert any("without validation_seed" in problem for problem in result.problems)


def test_a_held_out_image_used_as_a_reference_is_no_training_overlap(tmp_path: Path, tiny_encoder):
    run, held_out, training = _split_run(tmp_path)
    shutil.copy(held_out, run.references / "held_out_frame.png")
    result = evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder, cache_dir=tmp_path / "c")
    assert not [p for p in result.problems if "are training images" in p]
    assert result.calibration.references == 3
    shutil.copy(training[0], run.references / "trained_frame.png")
    result = evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder, cache_dir=tmp_path / "d")
    [problem] = [p for p in result.problems if "are training images" in p]
    assert "trained_frame.png" in problem and "held_out_frame.png" not in problem


def test_the_report_has_a_validation_loss_column_and_puts_the_loss_on_the_training_curve(tmp_path: Path,
                                                                                        tiny_encoder):
    record = {"status": "succeeded", "output_name": "luca", "argv": ["python", "train_network.py"],
              "summary": {"epochs": 2},
              "epochs": [{"epoch": e, "started_at": "", "wall_seconds": 10.0} for e in (1, 2)],
              "losses": [{"step": s, "epoch": 1 + (s - 1) // 3, "avr_loss": 0.2 - 0.01 * s, "s_per_it": 1.0}
                         for s in range(1, 7)],
              "validation_losses": [{"epoch": 1, "loss": 0.1234}, {"epoch": 2, "loss": 0.1187}],
              "checkpoints": {}, "samples": {}}
    run, _, _ = _split_run(tmp_path, record=record)
    evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder, cache_dir=tmp_path / "c")
    html = write_report(run.run_dir).read_text()
    page = _parsed(html)
    assert page.cells[("scores epochs", "2", "validation-loss")] == "0.1187"
    assert "validation loss (end of epoch)" in html


def test_a_report_of_a_run_without_validation_has_no_validation_column(tmp_path: Path, tiny_encoder):
    run = make_run(tmp_path, epochs=(0, 2))
    evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder, cache_dir=tmp_path / "c")
    assert "validation loss" not in write_report(run.run_dir).read_text()
    assert json.loads((run.run_dir / "run.json").read_text())["validation_losses"] == []
