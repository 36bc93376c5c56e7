"""Issue 13's recovery holes, one test each (they fail on the code before the fix)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import optuna
import pytest

from orchestrator.common.errors import UserInputError
from orchestrator.search import study as study_module
from orchestrator.search.executor import TrialOutcome
from orchestrator.search.optuna_adapter import heartbeat
from orchestrator.search.sampling import make_sampler
from orchestrator.search.simulator import SimulatedExecutor
from orchestrator.search.study import Search, SearchSettings
from orchestrator.search.surfaces import QuadraticSurface
from orchestrator.search.workspace import WorkerIdentity


def _settings(space, base, tmp_path: Path, **changes) -> SearchSettings:
    values = {"space": space, "base_config": base, "output": tmp_path, "trials": 3, "seed": 3, "pruner": "none",
              "patience": 0}
    values.update(changes)
    return SearchSettings(**values)


class OrchestratorKilled(BaseException):
    """Stands for SIGKILL: nothing after it runs, no except clause of the search catches it."""


class DiesMidTrial(SimulatedExecutor):
    def run(self, request, report):
        self._write_progress(request, TrialOutcome(), 1, finished=False)
        raise OrchestratorKilled


def _pretend_owner_died(search: Search, number: int) -> None:
    dead = WorkerIdentity(WorkerIdentity.current().host, WorkerIdentity.current().pid, 0.0)
    trial_id = search.storage.get_trial_id_from_study_id_trial_number(search._study_id, number)
    search.storage.set_trial_user_attr(trial_id, "worker", dead.as_text())


def test_a_retried_trial_starts_clean_and_is_readopted_after_a_second_kill(short_space, base_config,
                                                                          tmp_path) -> None:
    settings = _settings(short_space, base_config, tmp_path, enforce_constraints=False)
    first = Search(settings, DiesMidTrial())
    with pytest.raises(OrchestratorKilled):
        first.run_one_trial()
    _pretend_owner_died(first, 0)
    second = Search(settings, DiesMidTrial())
    second.recover_orphans()  # no trainer survived: trial 0 is failed and re-queued
    with pytest.raises(OrchestratorKilled):
        second.run_one_trial()  # its retry (trial 1) is killed too
    retry = second.study.trials[1]
    assert retry.system_attrs.get("failed_trial") == 0
    assert retry.user_attrs.get("outcome") is None and retry.user_attrs.get("failure_cause") is None
    _pretend_owner_died(second, 1)
    third = Search(settings, SimulatedExecutor(trainer_survives=True))
    summary = third.run()
    assert summary.adopted == [1], "the live retry must be re-adopted, not failed and re-queued again"
    assert summary.counted_trials == 3
    assert [t.state for t in third.study.trials].count(optuna.trial.TrialState.WAITING) == 0


def test_the_heartbeat_beats_from_ask_before_the_trials_folder_exists(short_space, base_config, tmp_path,
                                                                     monkeypatch) -> None:
    settings = _settings(short_space, base_config, tmp_path, trials=1, heartbeat_interval=1,
                         enforce_constraints=False)
    search = Search(settings, SimulatedExecutor())
    seen: list[int] = []
    original = study_module.create_trial_directory

    def checking_create(output, number, **kwargs):
        time.sleep(0.3)
        database = tmp_path / "optuna_study.db"
        with sqlite3.connect(database) as connection:
            seen.extend(row[0] for row in connection.execute("SELECT trial_id FROM trial_heartbeats"))
        return original(output, number, **kwargs)

    monkeypatch.setattr(study_module, "create_trial_directory", checking_create)
    search.run()
    assert seen, "a worker dying before the trial's folder exists would leave it RUNNING for ever"


class FlakyStorage:
    def __init__(self) -> None:
        self.calls = 0

    def get_heartbeat_interval(self) -> float:
        return 0.1

    def record_heartbeat(self, trial_id: int) -> None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("database is locked")


def test_the_heartbeat_survives_a_database_hiccup() -> None:
    storage = FlakyStorage()
    with heartbeat(storage, 7):  # type: ignore[arg-type]
        time.sleep(0.5)
    assert storage.calls >= 3


class TakenOver(SimulatedExecutor):
    """Another worker failed (and re-queued) our first trial while we trained it."""

    def run(self, request, report):
        outcome = super().run(request, report)
        if request.number == 0:
            storage, study_id = self.search.storage, self.search._study_id
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, 0)
            storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL)
        return outcome


def test_a_trial_taken_over_by_another_worker_does_not_end_the_search(short_space, base_config, tmp_path) -> None:
    executor = TakenOver()
    search = Search(_settings(short_space, base_config, tmp_path, trials=2, enforce_constraints=False), executor)
    executor.search = search
    summary = search.run()
    assert summary.counted_trials == 2


def test_a_resume_with_another_base_config_names_the_setting(short_space, base_config, tmp_path) -> None:
    Search(_settings(short_space, base_config, tmp_path, trials=1), SimulatedExecutor()).run()
    changed = {**base_config, "training": {**base_config["training"], "seed": 7}}
    with pytest.raises(UserInputError, match=r"base_config\.training\.seed is 42 in the study but 7 now.*--study-name"):
        Search(_settings(short_space, changed, tmp_path, trials=2), SimulatedExecutor())


def test_a_worker_with_another_evaluator_is_refused(short_space, base_config, tmp_path) -> None:
    Search(_settings(short_space, base_config, tmp_path, trials=1), SimulatedExecutor()).run()
    other = SimulatedExecutor(surface=QuadraticSurface(seed=5))
    with pytest.raises(UserInputError, match=r"scoring\.surface_seed is 0 in the study but 5 now"):
        Search(_settings(short_space, base_config, tmp_path, trials=2), other)


def test_rejected_trials_do_not_use_up_tpes_random_start_up(monkeypatch) -> None:
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    modelled: list[int] = []
    original = optuna.samplers.TPESampler._sample

    def spy(self, study, trial, search_space):
        modelled.append(trial.number)
        return original(self, study, trial, search_space)

    monkeypatch.setattr(optuna.samplers.TPESampler, "_sample", spy)
    study = optuna.create_study(direction="maximize", sampler=make_sampler("tpe", seed=0))
    space = {"x": FloatDistribution(0.0, 1.0)}
    for index in range(6):
        study.add_trial(create_trial(state=TrialState.PRUNED, params={"x": index / 10}, distributions=space,
                                     user_attrs={"outcome": "rejected"}))
    study.ask(space)
    assert modelled == [], "six rejections are not six trained start-up trials"
    for index in range(5):
        study.add_trial(create_trial(value=index / 10, params={"x": index / 10}, distributions=space,
                                     user_attrs={"outcome": "complete"}))
    study.ask(space)
    assert modelled, "after five trained trials TPE models the space"


def test_the_evaluator_device_follows_allow_cpu_and_is_freed_before_each_launch(tmp_path, monkeypatch) -> None:
    import argparse

    from orchestrator.search import cli
    from orchestrator.search.executor import SearchAborted, TrialRequest
    from orchestrator.search.kohya_executor import KohyaExecutor

    parser = argparse.ArgumentParser()
    cli._add_executor_arguments(parser)
    settings = type("S", (), {"references": tmp_path, "seed": 0, "state_budget_bytes": None})()
    assert cli._make_executor(parser.parse_args(["--allow-cpu"]), settings, None).device == "cpu"
    assert cli._make_executor(parser.parse_args([]), settings, None).device == "cuda"

    class LoadedEvaluator:
        closed = False

        def close(self) -> None:
            LoadedEvaluator.closed = True

    executor = KohyaExecutor(paths=None, references=tmp_path, device="cuda")  # type: ignore[arg-type]
    executor._evaluator = LoadedEvaluator()
    held_at_launch: list[object] = []

    def launch(*args, **kwargs):
        held_at_launch.append(executor._evaluator)
        raise OSError("tmux server unreachable")

    import orchestrator.kohya.render as render
    import orchestrator.runner as runner

    monkeypatch.setattr(render, "render_run", lambda *args, **kwargs: object())
    monkeypatch.setattr(runner, "start_training", launch)
    request = TrialRequest(0, tmp_path / "trial_0000", {}, {}, {}, "s")
    with pytest.raises(SearchAborted, match="could not be started: tmux server unreachable"):
        executor.run(request, lambda epoch, score, validation_loss=None: False)
    assert held_at_launch == [None] and LoadedEvaluator.closed


def test_trial_session_names_differ_across_studies_of_the_same_name(tmp_path) -> None:
    from orchestrator.search.executor import TrialRequest
    from orchestrator.search.kohya_executor import session_name_for

    one = TrialRequest(3, tmp_path / "a" / "trials" / "trial_0003", {}, {}, {}, "my.study")
    two = TrialRequest(3, tmp_path / "b" / "trials" / "trial_0003", {}, {}, {}, "my.study")
    assert session_name_for(one) != session_name_for(two)
    assert session_name_for(one).startswith("my_study_trial_0003_")


def test_the_beat_thread_is_gone_after_the_block() -> None:
    storage = FlakyStorage()
    with heartbeat(storage, 1):  # type: ignore[arg-type]
        pass
    assert not [t for t in threading.enumerate() if t.name == "heartbeat-1"]


def test_a_trial_asked_by_an_orchestrator_killed_before_its_claim_is_failed_not_counted(short_space, base_config,
                                                                                          tmp_path) -> None:
    """Found by the chaos run's kills aimed at ask: between ``study.ask()`` and the claim (worker attribute,
    heartbeat) a kill left a RUNNING trial that used up a slot and was never trained nor failed."""
    settings = _settings(short_space, base_config, tmp_path, claim_seconds=0.5)
    first = Search(settings, SimulatedExecutor())
    orphan = first.study.ask()  # the orchestrator dies here: nothing after ask ran
    resumed = Search(settings, SimulatedExecutor())
    summary = resumed.run()
    trials = {t.number: t for t in resumed.study.get_trials(deepcopy=False)}
    assert trials[orphan.number].state == optuna.trial.TrialState.FAIL
    assert "between asking for the trial and claiming it" in trials[orphan.number].user_attrs["failure_cause"]
    assert not [t for t in trials.values() if not t.state.is_finished()]
    trained = [t for t in trials.values() if t.state == optuna.trial.TrialState.COMPLETE]
    assert summary.counted_trials == len(trained) == 3


def test_a_trial_the_heartbeat_check_failed_names_that_cause_in_the_results(tmp_path) -> None:
    """Found by the parallel chaos run: a worker killed mid-trial is failed by another worker's
    ``fail_stale_trials``, which records no cause; the results file must still say why it failed."""
    from orchestrator.search import results as res

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=1,
                                         grace_period=1)
    study = optuna.create_study(storage=storage, study_name="stale")
    trial = study.ask()
    storage.record_heartbeat(trial._trial_id)
    time.sleep(2.5)
    optuna.storages.fail_stale_trials(study)
    data = res.build_results(study.get_trials(), study_name="stale", storage="", target_trials=1)
    (entry,) = data["trials"]
    assert entry["outcome"] == "failed"
    assert entry["reason"] == res.STALE_HEARTBEAT_CAUSE
