"""Proof that the choice ranks: sample sets whose quality is known by construction (ranking_world.py)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.evaluate import EpochCandidate, choose_epoch, evaluate_run
from orchestrator.search.executor import best_epoch_of
from tests.evaluate.character_encoder import CharacterEncoder
from tests.evaluate.ranking_world import build_ranking_run


def test_unseen_views_win_copies_are_gated_and_noise_has_no_character_variety(tmp_path: Path):
    run = build_ranking_run(tmp_path)
    result = evaluate_run(run.run_dir, references=run.references, encoder=CharacterEncoder(), cache_dir=tmp_path / "c")
    epochs = result.epochs
    assert 0 not in epochs  # epoch 0 is the base model: the floor, not a candidate
    assert result.calibration.base_samples == 12 and result.calibration["identity"].fallback is None
    assert result.best.epoch == 5  # (b) unseen views
    assert "memorisation" in epochs[4].failed_gates and 4 in result.best.excluded  # (a) exact training frames
    for epoch in (1, 2, 3):  # noise, generic, another character: not the character, far below (b)
        assert epochs[epoch].metrics["identity"] < 0.1
        assert epochs[epoch].metrics["character_variety"] == 0.0
        assert epochs[epoch].interval[1] < epochs[5].interval[0]
    assert epochs[1].total <= epochs[2].total  # noise below the base model's generic images
    assert "memorisation" in result.best.reason


def test_choice_prefers_the_earliest_epoch_within_the_noise_and_says_so():
    choice = choose_epoch([EpochCandidate(2, 0.60, 0.55, 0.66), EpochCandidate(4, 0.62, 0.58, 0.67),
                           EpochCandidate(6, 0.70, 0.64, 0.75, failed_gates=("loss",))])
    assert (choice.epoch, choice.leader, choice.within_noise, choice.excluded) == (2, 4, (2, 4), {6: ("loss",)})
    assert "earliest" in choice.reason and "epoch 6 (loss)" in choice.reason
    dirty = choose_epoch([EpochCandidate(2, 0.9, failed_gates=("collapse", "loss")),
                          EpochCandidate(4, 0.5, failed_gates=("collapse",))])
    assert dirty.epoch == 4 and not dirty.clean and "least bad" in dirty.reason


def test_search_and_evaluate_use_one_rule_for_bare_totals():
    scores = {2: 0.5, 4: 0.7, 6: 0.7}
    assert best_epoch_of(scores) == 4 == choose_epoch(EpochCandidate(e, s) for e, s in scores.items()).epoch
    assert best_epoch_of({}) is None
