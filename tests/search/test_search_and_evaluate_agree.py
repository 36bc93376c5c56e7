"""Issue 15: `lora-pipeline evaluate` and the search pick the same best epoch of the same run
(the search's kohya executor on the sd-scripts test double, then a standalone evaluation)."""

from __future__ import annotations

import json

import pytest

from orchestrator.evaluate import evaluate_run
from orchestrator.search.executor import best_epoch_of
from tests.search.test_kohya_executor import _executor, _request, kohya_world, tiny_encoder  # noqa: F401

pytestmark = pytest.mark.timeout(180)


def test_evaluate_and_the_search_agree_on_the_best_epoch(kohya_world, tiny_encoder, tmp_path) -> None:  # noqa: F811
    request = _request(tmp_path)
    outcome = _executor(kohya_world, tiny_encoder).run(request, lambda epoch, score, validation_loss=None: False)
    assert outcome.failure_cause is None and outcome.best_epoch is not None
    best = json.loads((request.run_dir / "evaluation" / "best.json").read_text())
    assert outcome.best_epoch == best["epoch"]

    _, references, _ = kohya_world
    standalone = evaluate_run(request.run_dir, references=references, encoder=tiny_encoder,
                              cache_dir=tmp_path / "c", write=False)
    assert standalone.best is not None and standalone.best.epoch == outcome.best_epoch
    assert outcome.best_score == pytest.approx(standalone.epochs[outcome.best_epoch].total)
    # With gates all passed and no intervals, the search's bare-total rule picks the same epoch.
    if all(not score.failed_gates for score in standalone.epochs.values()) and len(standalone.best.within_noise) == 1:
        assert best_epoch_of({e: s.total for e, s in standalone.epochs.items()}) == outcome.best_epoch
