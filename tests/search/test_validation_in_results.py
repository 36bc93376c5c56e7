"""The validation losses a trainer reported show per trial in trial_results.json, `search status` and the
analysis."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.common.atomic import atomic_write_json
from orchestrator.runner.record import RunRecord
from orchestrator.search.analyze import best_epochs_table
from orchestrator.search.executor import ReportEpoch, TrialOutcome, TrialRequest
from orchestrator.search.monitor import status_lines
from orchestrator.search.results import RESULTS_FILE
from orchestrator.search.simulator import SimulatedExecutor
from orchestrator.search.study import Search
from tests.search.test_search_loop import settings


class ValidatingExecutor(SimulatedExecutor):
    """Reports a validation loss with every score from epoch 2 on (epoch 1: none validated yet)."""

    def run(self, request: TrialRequest, report: ReportEpoch) -> TrialOutcome:
        def with_loss(epoch: int, score: float, validation_loss: float | None = None) -> bool:
            return report(epoch, score, 0.2 - epoch / 1000 - request.number / 100 if epoch >= 2 else None)

        return super().run(request, with_loss)


def test_each_trial_entry_has_its_validation_losses_and_the_last_one(short_space, base_config, tmp_path) -> None:
    Search(settings(short_space, base_config, tmp_path, trials=3), ValidatingExecutor()).run()
    results = json.loads((tmp_path / RESULTS_FILE).read_text())
    trained = [entry for entry in results["trials"] if entry["epoch_scores"]]
    assert trained
    for entry in trained:
        number = entry["number"]
        expected = {e: 0.2 - int(e) / 1000 - number / 100 for e in entry["epoch_scores"] if int(e) >= 2}
        assert entry["validation_losses"] == expected
        last = max(expected, key=int)
        assert entry["last_validation_loss"] == {"epoch": int(last), "loss": expected[last]}
    lines = status_lines(tmp_path)
    for entry in trained:
        last = entry["last_validation_loss"]
        assert any(line.startswith(f"trial {entry['number']} {entry['outcome']}: ")
                   and line.endswith(f"last val loss {last['loss']:.4g} at epoch {last['epoch']}") for line in lines)
    table = {row["number"]: row for row in best_epochs_table(results["trials"])}
    assert all(table[e["number"]]["last_validation_loss"] == e["last_validation_loss"]["loss"]
               for e in trained if e["number"] in table)


class NotValidatingExecutor(SimulatedExecutor):
    """A trainer without a validation split: scores only (the simulated surfaces always have a loss)."""

    def run(self, request: TrialRequest, report: ReportEpoch) -> TrialOutcome:
        def without_loss(epoch: int, score: float, validation_loss: float | None = None) -> bool:
            return report(epoch, score)

        return super().run(request, without_loss)


def test_a_study_without_validation_has_no_validation_lines(short_space, base_config, tmp_path) -> None:
    Search(settings(short_space, base_config, tmp_path, trials=2), NotValidatingExecutor()).run()
    results = json.loads((tmp_path / RESULTS_FILE).read_text())
    assert all(entry["last_validation_loss"] is None for entry in results["trials"])
    assert not any("val loss" in line for line in status_lines(tmp_path))


def test_status_shows_a_running_trials_last_validation_loss(tmp_path: Path) -> None:
    trial_dir = tmp_path / "trials" / "trial_0002"
    (trial_dir / "run").mkdir(parents=True)
    RunRecord(output_name="trial_0002", run_dir=str(trial_dir / "run"), status="running", summary={"epochs": 8},
              epochs=[{"epoch": 5}], losses=[{"step": 50, "avr_loss": 0.09}],
              validation_losses=[{"epoch": 2, "loss": 0.1312}, {"epoch": 4, "loss": 0.1287}]).save()
    atomic_write_json(tmp_path / RESULTS_FILE, {
        "study_name": "s", "counted_trials": 1, "target_trials": 4, "counts": {"running": 1}, "gpu_hours": 1.0,
        "updated_at": "now", "best": None,
        "trials": [{"number": 2, "outcome": "running", "directory": str(trial_dir), "epoch_scores": {}}]})
    [running] = [line for line in status_lines(tmp_path) if line.startswith("running:")]
    assert running == "running: trial 2 epoch 5/8, loss 0.0900, val loss 0.1287 (epoch 4) (running)"
