"""The scheduler: pure decisions on small typed objects, and a simulated search that pauses and resumes."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from orchestrator.search import scheduler as sched
from orchestrator.search.curve_model import CurveModel, CurveState, Pace
from orchestrator.search.executor import SearchAborted
from orchestrator.search.results import build_results
from orchestrator.search.scheduled import fail_stale_unpaused, is_paused
from orchestrator.search.simulator import SimulatedExecutor
from orchestrator.search.space import parse_search_space
from orchestrator.search.study import Search, SearchSettings
from orchestrator.search.surfaces import SURFACE_FAMILIES
from orchestrator.search.vocabulary import PHASE_ATTR, PHASE_PAUSED

EPOCHS = (2, 4, 6, 8, 10, 12)


def pace(lr: float = 1e-4) -> Pace:
    return Pace.of({"learning_rate": lr, "network_dim": 128, "network_alpha": 64, "max_train_epochs": 12})


def curve(scores: list[float], lr: float = 1e-4) -> CurveState:
    return CurveState(pace(lr), EPOCHS, dict(zip(EPOCHS, scores, strict=False)))


def rising(peak: float, speed: float) -> list[float]:
    """A saturating curve: fast runs (speed 1) are near their peak at once, slow ones (0.2) late."""
    return [peak - 0.3 * math.exp(-speed * epoch / 2) for epoch in EPOCHS]


def view(number: int, scores: list[float], phase: str = "paused", lr: float = 1e-4) -> sched.RunView:
    return sched.RunView(number, curve(scores, lr), phase)  # type: ignore[arg-type]


BUDGET = sched.Budget(spent_seconds=0.0, total_seconds=None, configurations=1, target_configurations=100)
ENDING = sched.Budget(spent_seconds=0.0, total_seconds=None, configurations=100, target_configurations=100)


# ------------------------------------------------------------------------------ learning-curve model
def test_the_model_learns_that_slow_learners_still_gain_from_their_parameters():
    finished = [curve(rising(0.8, 0.2), lr=6e-5) for _ in range(4)] + [curve(rising(0.8, 1.0), lr=1.2e-4)
                                                                      for _ in range(4)]
    model = CurveModel.fit(finished)
    assert model.ready
    slow = model.predict(curve(rising(0.8, 0.2)[:2], lr=6e-5))
    fast = model.predict(curve(rising(0.8, 1.0)[:2], lr=1.2e-4))
    # Different pace: after two rungs the slow run is 0.11 below its final best and the fast one 0.03; the
    # model tells them apart (from the learning rate and the slope) and lands near each one's true final.
    slow_final, fast_final = rising(0.8, 0.2)[-1], rising(0.8, 1.0)[-1]
    assert slow.mean - slow.best > 0.08 and fast.mean - fast.best < 0.06
    assert slow.mean == pytest.approx(slow_final, abs=0.02) and fast.mean == pytest.approx(fast_final, abs=0.02)


def test_without_finished_curves_the_interval_is_wide_and_a_finished_run_is_exact():
    model = CurveModel.fit([])
    early = model.predict(curve([0.5]))
    assert not model.ready and early.std > 0.05 and early.mean >= early.best
    done = CurveModel.fit([curve(rising(0.8, 0.5))] * 3).predict(curve(rising(0.8, 0.5)))
    assert done.std == 0.0 and done.mean == done.best


# --------------------------------------------------------------------------------------- decisions
def test_a_run_past_its_peak_pauses_and_its_last_epoch_finishes():
    runs = [view(0, [0.6, 0.7, 0.65, 0.64], phase="training")]
    assert sched.at_rung("pause", runs[0], runs, BUDGET) == sched.PAST_PEAK
    last = view(1, [0.6, 0.7, 0.71, 0.72, 0.73, 0.74], phase="training")
    assert sched.at_rung("pause", last, [last], BUDGET) is None


def test_a_run_outside_the_top_third_of_its_rung_pauses_and_one_inside_goes_on():
    others = [view(n, [0.70 - 0.01 * n, 0.75 - 0.01 * n]) for n in range(1, 6)]
    weak = view(9, [0.60], phase="training")
    strong = view(10, [0.72], phase="training")
    assert sched.at_rung("pause", weak, [*others, weak], BUDGET) == sched.NOT_PROMOTED
    assert sched.at_rung("pause", strong, [*others, strong], BUDGET) is None


def test_the_free_gpu_resumes_a_paused_run_that_is_back_in_the_top_fraction_else_starts_a_new_one():
    finished = [view(n, rising(0.8, 0.5), phase="finished") for n in range(3)]
    promising = view(7, rising(0.84, 0.5)[:1])  # paused at rung 1 with the best first rung of all
    hopeless = view(8, [0.3])
    action = sched.next_action("pause", [*finished, promising, hopeless], BUDGET)
    assert action == sched.Action("resume", 7, action.reason)
    assert sched.next_action("pause", [*finished, hopeless], BUDGET).kind == "new"


def test_at_the_end_a_paused_run_that_could_still_win_is_finished_and_then_the_search_stops():
    finished = [view(n, rising(0.8, 0.5), phase="finished") for n in range(3)]
    could_win = view(5, rising(0.9, 0.2)[:2])
    cannot = view(6, [0.2, 0.21, 0.22])
    assert sched.next_action("pause", [*finished, could_win, cannot], ENDING).number == 5
    assert sched.next_action("pause", [*finished, cannot], ENDING).kind == "stop"
    spent = sched.Budget(spent_seconds=10.0, total_seconds=10.0, configurations=1, target_configurations=100)
    assert sched.next_action("pause", [*finished, could_win], spent).kind == "stop"


def test_first_epoch_pauses_every_config_once_and_promotes_the_best_of_each_batch():
    paused = [view(n, [0.5 + 0.01 * n]) for n in range(sched.FIRST_EPOCH_BATCH)]
    assert sched.at_rung("first-epoch", view(9, [0.9], "training"), paused, BUDGET) == sched.NOT_PROMOTED
    action = sched.next_action("first-epoch", paused, BUDGET)
    assert action.kind == "resume" and action.number == sched.FIRST_EPOCH_BATCH - 1
    assert sched.next_action("first-epoch", paused[:-1], BUDGET).kind == "new"


# ------------------------------------------------------------------------------- simulated searches
SPACE = parse_search_space({
    "parameters": {
        "network_dim": {"kind": "categorical", "choices": [64, 128]},
        "network_alpha_ratio": {"kind": "float", "low": 0.3, "high": 0.7, "step": 0.1, "helper": True},
        "learning_rate": {"kind": "float", "low": 6e-5, "high": 1.2e-4, "log": True},
        "max_train_epochs": {"kind": "categorical", "choices": [12, 16]},
    },
    "derived": {"network_alpha": {"rule": "int_product", "of": ["network_dim", "network_alpha_ratio"]}},
})
BASE = {"preset": {"name": "t", "family": "sd15"}, "network": {"network_module": "networks.lora"},
        "training": {"sample_every_n_epochs": 2, "seed": 1}, "dataset": {"resolution": 512}}


def scheduled_search(tmp_path: Path, executor: SimulatedExecutor, *, trials: int = 14, gpu_hours: float = 60.0,
                     storage: str = "memory") -> Search:
    settings = SearchSettings(space=SPACE, base_config=BASE, output=tmp_path, trials=trials, seed=3,
                              storage_url=storage, pruner="none", scheduler="pause", gpu_hours=gpu_hours,
                              write_files=storage != "memory")
    return Search(settings, executor)


def test_a_scheduled_search_pauses_and_resumes_runs_without_training_an_epoch_twice(tmp_path):
    executor = SimulatedExecutor(surface=SURFACE_FAMILIES["late"](seed=2), record_progress=False)
    search = scheduled_search(tmp_path, executor)
    search.run()
    trials = search.study.get_trials(deepcopy=False)
    assert all(t.state != TrialState.RUNNING for t in trials)  # nothing left paused once the search ended
    for epochs in executor.trained_epochs.values():
        assert epochs == list(range(1, len(epochs) + 1))  # each epoch once, in order, across resumes
    resumed = [t for t in trials if len(t.user_attrs.get("segments", [])) > 1]
    assert resumed, "the scheduler never took a paused run up again"
    for trial in resumed + [t for t in trials if t.intermediate_values]:
        trained = executor.trained_epochs[("lora_hyperparameter_search", trial.number)]
        sampled = [epoch for epoch in (2, 4, 6, 8, 10, 12, 14, 16) if epoch <= trained[-1]]
        assert sorted(trial.intermediate_values) == sampled  # the whole curve is in Optuna
        segments = trial.user_attrs["segments"]
        assert segments[0][0] == 1 and all(b[0] == a[1] + 1 for a, b in zip(segments, segments[1:], strict=False))
        # every stretch after the first pays the start-up of a resume
        assert trial.user_attrs["gpu_seconds"] >= executor.resume_seconds * (len(segments) - 1)
    phases = {t.user_attrs.get(PHASE_ATTR) for t in trials if t.intermediate_values}
    assert phases <= {"finished", "stopped"} and "finished" in phases


def test_a_paused_run_survives_a_restart_and_is_not_failed_by_the_stale_heartbeat_check(tmp_path):
    surface = SURFACE_FAMILIES["quadratic"](seed=1)

    class Dies(SimulatedExecutor):
        calls = 0

        def run(self, request, report):  # type: ignore[no-untyped-def]
            Dies.calls += 1
            if Dies.calls > 8:
                raise SearchAborted("the orchestrator went away")
            return super().run(request, report)

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first = scheduled_search(tmp_path, Dies(surface=surface), storage=storage)
    with pytest.raises(SearchAborted):
        first.run()
    paused = [t.number for t in first.study.get_trials(deepcopy=False) if is_paused(t)]
    assert paused, "no run was paused before the restart"
    # Long after the grace period: a paused run has no heartbeat, and must not be failed for it.
    storage_obj = first.storage
    for number in paused:
        storage_obj.record_heartbeat(first._trial_id(number))  # type: ignore[attr-defined]
    storage_obj.grace_period = 0  # type: ignore[attr-defined]
    import time

    time.sleep(1.1)
    fail_stale_unpaused(first.study)
    assert all(is_paused(first.study.get_trials(deepcopy=False)[n]) for n in paused)
    results = build_results(first.study.get_trials(deepcopy=False), study_name="s", storage="x", target_trials=14)
    assert {results["trials"][n]["outcome"] for n in paused} == {PHASE_PAUSED}
    assert results["best_checkpoint"] is not None

    executor = SimulatedExecutor(surface=surface)
    executor.saved_states = {}  # a new process: the saved state is read from the run's own folder
    second = scheduled_search(tmp_path, executor, storage=storage)
    second.run()
    after = second.study.get_trials(deepcopy=False)
    resumed = [n for n in paused if len(after[n].user_attrs.get("segments", [])) > 1]
    for number in resumed:
        first_epoch = executor.trained_epochs[("lora_hyperparameter_search", number)][0]
        assert first_epoch == after[number].user_attrs["segments"][1][0]  # continued, not trained again
    assert all(t.state != TrialState.RUNNING for t in after)


def test_optuna_stale_check_would_fail_a_paused_run(tmp_path):
    """Why the search has its own stale check: Optuna's fails a RUNNING trial with an old heartbeat."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    trial.set_user_attr(PHASE_ATTR, PHASE_PAUSED)
    storage.record_heartbeat(trial._trial_id)
    import time

    time.sleep(2.1)
    fail_stale_unpaused(study)
    assert study.trials[0].state == TrialState.RUNNING
    optuna.storages.fail_stale_trials(study)
    assert study.trials[0].state == TrialState.FAIL


class PeaksAtEpochFour:
    """Every config peaks at epoch 4 and over-fits after it (a protocol surface; scores differ by rate)."""

    seconds_per_evaluation = 60.0

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def _curve(self, flat, epoch: int) -> float:
        return 0.5 + float(flat["learning_rate"]) * 1e3 * min(epoch, 4) * 0.05 - 0.03 * max(0, epoch - 4)

    def observe(self, flat, epoch: int) -> float:
        return self._curve(flat, epoch)

    def validation_loss(self, flat, epoch: int) -> float:
        return 1.0 - self._curve(flat, epoch)

    def best_sampled_score(self, flat) -> float:
        return self._curve(flat, 4)

    def epoch_cost(self, flat) -> float:
        return 600.0


def test_first_epoch_ends_a_promoted_run_past_its_peak_at_once_and_frees_its_state(tmp_path):
    # First-epoch resumes only runs waiting at their first rung: a promoted run that pauses past its peak
    # would never continue, so it ends there (COMPLETE, its state deleted) instead of holding disk and
    # counting as unfinished until the search ends.
    executor = SimulatedExecutor(surface=PeaksAtEpochFour(), record_progress=False)
    settings = SearchSettings(space=SPACE, base_config=BASE, output=tmp_path, trials=8, seed=3, storage_url="memory",
                              pruner="none", scheduler="first-epoch", write_files=False)
    search = Search(settings, executor)
    search.run()
    promoted = [t for t in search.study.get_trials(deepcopy=False) if t.user_attrs.get("promoted")]
    assert promoted
    for trial in promoted:
        assert max(trial.intermediate_values) == 8  # stopped two sample epochs after its peak at 4
        assert trial.state == TrialState.COMPLETE and trial.user_attrs[PHASE_ATTR] == "finished"
        assert "past its peak" in trial.user_attrs["early_stop_reason"]
        assert ("lora_hyperparameter_search", trial.number) not in executor.saved_states
