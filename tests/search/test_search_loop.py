"""The search loop with real Optuna (SQLite) and the simulator at the executor seam."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import pytest

from orchestrator.search.executor import ReportEpoch, TrialOutcome, TrialRequest
from orchestrator.search.results import RESULTS_FILE
from orchestrator.search.simulator import SimulatedExecutor
from orchestrator.search.study import Search, SearchSettings
from orchestrator.search.workspace import WorkerIdentity


@dataclass
class CountingExecutor(SimulatedExecutor):
    runs: list[int] = field(default_factory=list)
    reports: dict[int, list[int]] = field(default_factory=dict)

    def run(self, request: TrialRequest, report: ReportEpoch) -> TrialOutcome:
        self.runs.append(request.number)

        def counting_report(epoch: int, score: float, validation_loss: float | None = None) -> bool:
            self.reports.setdefault(request.number, []).append(epoch)
            return report(epoch, score, validation_loss)

        return super().run(request, counting_report)


def settings(space, base, tmp_path: Path, **changes) -> SearchSettings:
    values = {"space": space, "base_config": base, "output": tmp_path, "trials": 6, "seed": 3, "pruner": "none",
              "patience": 0}
    values.update(changes)
    return SearchSettings(**values)


def results(tmp_path: Path) -> dict:
    return json.loads((tmp_path / RESULTS_FILE).read_text())


def test_a_search_trains_the_requested_number_and_records_rejections_with_reasons(short_space, base_config,
                                                                                  tmp_path) -> None:
    executor = CountingExecutor()
    summary = Search(settings(short_space, base_config, tmp_path, trials=8), executor).run()
    data = results(tmp_path)
    trained = [t for t in data["trials"] if t["outcome"] in ("complete", "pruned", "failed")]
    rejected = [t for t in data["trials"] if t["outcome"] == "rejected"]
    assert summary.counted_trials == data["counted_trials"] == len(trained) == 8
    assert sorted(executor.runs) == sorted(t["number"] for t in trained)
    assert rejected, "seed 3 samples unsafe combinations in the shipped space"
    for entry in rejected:
        assert entry["state"] == "pruned" and entry["reason"].startswith("rejected by")
        assert entry["failed_rules"] and entry["gpu_seconds"] is None and entry["directory"] is None
    for entry in trained:
        assert Path(entry["directory"]).name == f"trial_{entry['number']:04d}"
        assert entry["value"] == max(entry["epoch_scores"].values())
        assert entry["epoch_scores"][str(entry["best_epoch"])] == entry["value"]
        assert entry["gpu_seconds"] > 0 and entry["checkpoint"]
    assert data["best"]["number"] == max(trained, key=lambda t: t["value"])["number"]
    assert len({t["directory"] for t in trained}) == len(trained)


def test_rejected_trials_carry_optuna_constraints_so_tpe_ranks_them_infeasible(short_space, base_config,
                                                                               tmp_path) -> None:
    search = Search(settings(short_space, base_config, tmp_path, trials=6), SimulatedExecutor())
    search.run()
    for trial in search.study.trials:
        violated = sum(value > 0 for value in trial.constraints.values())
        assert (trial.user_attrs["outcome"] == "rejected") == (violated > 0)
        assert violated == len(trial.user_attrs.get("failed_rules", []))


def test_a_trainer_crash_fails_only_that_trial(short_space, base_config, tmp_path) -> None:
    probe = Search(settings(short_space, base_config, tmp_path / "probe", trials=3), CountingExecutor())
    probe.run()
    crashing = probe.executor.runs[1]  # the second trained trial of the same seed
    executor = CountingExecutor(crash_trials={crashing})
    Search(settings(short_space, base_config, tmp_path / "real", trials=4), executor).run()
    data = results(tmp_path / "real")
    failed = [t for t in data["trials"] if t["outcome"] == "failed"]
    assert [t["number"] for t in failed] == [crashing]
    assert "simulated trainer crash" in failed[0]["reason"] and failed[0]["state"] == "fail"
    assert sum(t["outcome"] in ("complete", "pruned") for t in data["trials"]) == 3


def test_an_executor_exception_is_recorded_as_that_trials_failure(short_space, base_config, tmp_path) -> None:
    exploded: list[int] = []

    class Exploding(SimulatedExecutor):
        def run(self, request, report):
            if not exploded:
                exploded.append(request.number)
                raise RuntimeError("evaluator lost its CLIP weights")
            return super().run(request, report)

    Search(settings(short_space, base_config, tmp_path, trials=2, seed=11), Exploding()).run()
    entries = {t["number"]: t for t in results(tmp_path)["trials"]}
    first = entries[exploded[0]]
    assert first["outcome"] == "failed" and first["reason"] == "RuntimeError: evaluator lost its CLIP weights"
    assert sum(t["outcome"] == "complete" for t in entries.values()) == 1


def test_the_pruner_stops_a_losing_trial_mid_run_and_keeps_its_scores(space, base_config, tmp_path) -> None:
    executor = CountingExecutor()
    search = Search(settings(space, base_config, tmp_path, trials=9, pruner="median", seed=5), executor)
    search.run()
    pruned = [t for t in results(tmp_path)["trials"] if t["outcome"] == "pruned"]
    assert pruned, "the median pruner stopped no trial in 9"
    for entry in pruned:
        epochs = executor.reports[entry["number"]]
        planned = entry["params"]["max_train_epochs"]
        assert max(epochs) < planned, "a pruned trial must stop before its last epoch"
        assert [int(e) for e in entry["epoch_scores"]] == epochs
        assert entry["reason"].startswith("stopped by the median pruner") and entry["checkpoint"]


def test_resume_continues_to_the_total_and_never_reruns_a_finished_trial(short_space, base_config,
                                                                       tmp_path) -> None:
    Search(settings(short_space, base_config, tmp_path, trials=4), CountingExecutor()).run()
    before = {t["number"]: t for t in results(tmp_path)["trials"]}
    second = CountingExecutor()
    summary = Search(settings(short_space, base_config, tmp_path, trials=7), second).run()
    after = {t["number"]: t for t in results(tmp_path)["trials"]}
    assert summary.counted_trials == 7 and len(second.runs) == 3
    assert not set(second.runs) & set(before)
    for number, entry in before.items():
        assert after[number]["finished_at"] == entry["finished_at"] and after[number]["value"] == entry["value"]
    third = CountingExecutor()
    Search(settings(short_space, base_config, tmp_path, trials=7), third).run()
    assert third.runs == []


def test_a_different_space_under_the_same_study_name_is_refused(short_space, space, base_config, tmp_path) -> None:
    from orchestrator.common.errors import UserInputError

    Search(settings(short_space, base_config, tmp_path, trials=1), SimulatedExecutor()).run()
    with pytest.raises(UserInputError, match="different search space"):
        Search(settings(space, base_config, tmp_path, trials=2), SimulatedExecutor())


def test_a_stale_trial_of_a_dead_remote_worker_is_failed_by_heartbeat_and_retried(short_space, base_config,
                                                                                 tmp_path) -> None:
    import time

    first = Search(settings(short_space, base_config, tmp_path, trials=1, heartbeat_interval=1, grace_period=2),
                   SimulatedExecutor())
    trial = first.study.ask()
    trial.set_user_attr("worker", WorkerIdentity("another-machine", 4242, 1.0).as_text())
    params = short_space.sample(trial)
    first.storage.record_heartbeat(first.storage.get_trial_id_from_study_id_trial_number(
        first._study_id, trial.number))
    time.sleep(3)
    executor = CountingExecutor()
    Search(settings(short_space, base_config, tmp_path, trials=1, heartbeat_interval=1, grace_period=2),
           executor).run()
    data = results(tmp_path)
    stale, retry = data["trials"][0], data["trials"][1]
    assert stale["state"] == "fail" and stale["retried_as_new_trial"]
    assert retry["retry_of"] == stale["number"] and retry["params"] == stale["params"]
    assert stale["params"]["learning_rate"] == params["learning_rate"]
    assert data["counted_trials"] == 1 and executor.runs == [retry["number"]]


def test_results_file_parses_after_every_state_change(short_space, base_config, tmp_path) -> None:
    seen: list[dict] = []

    class Watching(SimulatedExecutor):
        def run(self, request, report):
            def watching_report(epoch, score, validation_loss=None):
                stop = report(epoch, score, validation_loss)
                seen.append(results(tmp_path))
                return stop
            return super().run(request, watching_report)

    Search(settings(short_space, base_config, tmp_path, trials=3), Watching()).run()
    assert seen and all(any(t["outcome"] == "running" for t in data["trials"]) for data in seen)
    assert optuna.__version__.startswith("5")


@pytest.mark.parametrize(("scores", "patience", "stop"), [
    ({2: 0.5, 4: 0.6, 6: 0.59, 8: 0.58}, 2, True),
    ({2: 0.5, 4: 0.6, 6: 0.59, 8: 0.61}, 2, False),
    ({2: 0.5, 4: 0.6, 6: 0.59}, 2, False),
    ({2: 0.6, 4: 0.6, 6: 0.6}, 2, True),  # a plateau is not progress
    ({2: 0.5, 4: 0.6, 6: 0.59, 8: 0.58}, 0, False),
])
def test_past_peak_needs_patience_epochs_below_the_earlier_best(scores, patience, stop) -> None:
    from orchestrator.search.study import past_peak

    assert past_peak(scores, patience) is stop


def test_a_run_past_its_peak_is_stopped_and_completes_with_its_best_epoch(space, base_config, tmp_path) -> None:
    from orchestrator.search.space import parse_search_space

    data = space.to_data()  # hot learning rates and long runs: the simulated score peaks mid-run
    data["parameters"]["max_train_epochs"]["choices"] = [24]
    data["parameters"]["learning_rate"].update(low=9e-5, high=1e-4)
    data["parameters"]["network_alpha_ratio"].update(low=0.6, high=0.7)
    executor = CountingExecutor()
    Search(settings(parse_search_space(data), base_config, tmp_path, trials=3, patience=2, seed=7), executor).run()
    stopped = [t for t in results(tmp_path)["trials"] if t["reason"] and t["reason"].startswith("no better score")]
    assert stopped, "no trial peaked early enough to be stopped"
    for entry in stopped:
        epochs = executor.reports[entry["number"]]
        assert entry["outcome"] == "complete" and entry["state"] == "complete"
        assert max(epochs) < entry["params"]["max_train_epochs"]
        scores = [entry["epoch_scores"][str(e)] for e in epochs]
        assert max(scores[-2:]) <= max(scores[:-2]) and entry["value"] == max(scores)


def test_optuna_objects_follow_the_guide_without_deprecated_knobs() -> None:
    import warnings

    from orchestrator.common.errors import UserInputError
    from orchestrator.search.pruning import make_pruner
    from orchestrator.search.sampling import make_sampler
    from orchestrator.search.storage import redact_url

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # Optuna 5 raises FutureWarning for deprecated knobs
        sampler = make_sampler("tpe", seed=1)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert sampler._multivariate is True and sampler._n_startup_trials == 5 and sampler._constant_liar is True
    assert isinstance(make_sampler("random", seed=1), optuna.samplers.RandomSampler)
    assert isinstance(make_pruner("median", max_epochs=24), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("hyperband", max_epochs=24), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner("none", max_epochs=24), optuna.pruners.NopPruner)
    with pytest.raises(UserInputError):
        make_pruner("asha", max_epochs=24)  # type: ignore[arg-type]
    assert redact_url("postgresql://luca:s3cret@db:5432/optuna") == "postgresql://luca:***@db:5432/optuna"
    assert redact_url("sqlite:///x/optuna_study.db") == "sqlite:///x/optuna_study.db"


def test_hyperband_prunes_through_the_same_seam(space, base_config, tmp_path) -> None:
    executor = CountingExecutor()
    Search(settings(space, base_config, tmp_path, trials=8, pruner="hyperband", seed=5), executor).run()
    pruned = [t for t in results(tmp_path)["trials"] if t["outcome"] == "pruned"]
    assert pruned and all(t["reason"].startswith("stopped by the hyperband pruner") for t in pruned)
    assert all(max(executor.reports[t["number"]]) < t["params"]["max_train_epochs"] for t in pruned)


def test_a_problem_every_trial_would_hit_fails_that_trial_and_stops_the_search(short_space, base_config,
                                                                              tmp_path) -> None:
    from orchestrator.search.executor import SearchAborted

    class NoGpu(SimulatedExecutor):
        def run(self, request, report):
            raise SearchAborted("pre-flight refused: no GPU")

    with pytest.raises(SearchAborted):
        Search(settings(short_space, base_config, tmp_path, trials=5), NoGpu()).run()
    trained = [t for t in results(tmp_path)["trials"] if t["outcome"] != "rejected"]
    assert [(t["outcome"], t["reason"]) for t in trained] == [("failed", "pre-flight refused: no GPU")]


@dataclass
class LossReportingExecutor(SimulatedExecutor):
    """Reports a validation loss with every other score, as a trainer validating every 4 epochs would."""

    def run(self, request: TrialRequest, report: ReportEpoch) -> TrialOutcome:
        def with_loss(epoch: int, score: float, validation_loss: float | None = None) -> bool:
            return report(epoch, score, 0.1 + epoch / 100 if epoch % 4 == 0 else None)

        return super().run(request, with_loss)


def test_validation_losses_reported_with_scores_are_kept_on_the_trial(short_space, base_config, tmp_path) -> None:
    from orchestrator.search.vocabulary import VALIDATION_LOSS_ATTR

    search = Search(settings(short_space, base_config, tmp_path, trials=3), LossReportingExecutor())
    search.run()
    trained = [t for t in search.study.trials if t.intermediate_values]
    assert trained
    for trial in trained:
        expected = {str(e): 0.1 + e / 100 for e in trial.intermediate_values if e % 4 == 0}
        assert trial.user_attrs.get(VALIDATION_LOSS_ATTR, {}) == expected
