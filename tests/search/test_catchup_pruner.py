"""The catch-up pruner: a run is stopped only when it can no longer reach the best finished score."""

from __future__ import annotations

import json

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from orchestrator.search.optuna_adapter import quiet_optuna_notices
from orchestrator.search.pruning import CatchUpPruner, largest_gain_after, make_pruner
from orchestrator.search.results import RESULTS_FILE
from orchestrator.search.simulator import SimulatedExecutor
from orchestrator.search.study import Search, SearchSettings
from orchestrator.search.vocabulary import LAST_EPOCH_ATTR

X = {"x": FloatDistribution(0.0, 1.0)}


def finished(study: optuna.Study, curve: dict[int, float]) -> None:
    study.add_trial(create_trial(params={"x": 0.5}, distributions=X, value=max(curve.values()),
                                 intermediate_values=curve, state=TrialState.COMPLETE))


def running(study: optuna.Study, curve: dict[int, float], *, last_epoch: int | None = None
            ) -> optuna.trial.FrozenTrial:
    trial = study.ask(X)
    if last_epoch is not None:
        trial.set_user_attr(LAST_EPOCH_ATTR, last_epoch)
    for epoch, score in curve.items():
        trial.report(score, epoch)
    return study._storage.get_trial(trial._trial_id)


def study_with(curves: list[dict[int, float]]) -> optuna.Study:
    quiet_optuna_notices()
    study = optuna.create_study(direction="maximize")
    for curve in curves:
        finished(study, curve)
    return study


# Best finished score 0.80. Largest gain after epoch 4: the slow run, 0.74 -> 0.79 = 0.05.
FAST = {2: 0.70, 4: 0.78, 6: 0.80, 8: 0.79}
SLOW = {2: 0.60, 4: 0.74, 6: 0.77, 8: 0.79}


def test_a_run_that_could_still_catch_up_is_kept_and_one_that_cannot_is_stopped() -> None:
    study = study_with([FAST, SLOW])
    pruner = CatchUpPruner(n_startup_trials=2)
    assert not pruner.prune(study, running(study, {2: 0.60, 4: 0.76}))  # 0.76 + 0.05 >= 0.80
    # Flat at 0.61 by epoch 6: SLOW gained 0.02 after epoch 6, and its own curve has stopped rising.
    assert pruner.prune(study, running(study, {2: 0.60, 4: 0.61, 6: 0.61}))
    # One sample epoch says nothing about a run's pace: never pruned on it, however low.
    assert not pruner.prune(study, running(study, {2: 0.30}))


def test_nothing_is_stopped_before_enough_runs_finished_or_where_none_got_that_far() -> None:
    study = study_with([FAST, SLOW])
    assert not CatchUpPruner(n_startup_trials=3).prune(study, running(study, {2: 0.30, 4: 0.40}))
    assert not CatchUpPruner(n_startup_trials=2).prune(study, running(study, {10: 0.40}))  # no run reached epoch 10
    assert not CatchUpPruner(n_startup_trials=2, n_warmup_steps=6).prune(study, running(study, {4: 0.40}))


# A long run that climbs late: 0.66 at epoch 8, 0.72 at 16, 0.80 at 24 (the best finished score).
LATE = {8: 0.66, 16: 0.72, 24: 0.80}


def test_only_gains_made_by_the_trials_own_last_epoch_count() -> None:
    study = study_with([LATE])
    pruner = CatchUpPruner(n_startup_trials=1)
    flat = {4: 0.655, 8: 0.66}  # its own curve has all but stopped: only the study's curves could carry it
    # A 24-epoch trial at 0.66 by epoch 8 may still make LATE's 0.14: it is kept.
    assert not pruner.prune(study, running(study, flat, last_epoch=24))
    # A 16-epoch trial can make at most LATE's gain up to epoch 16 (0.06): 0.66 + 0.06 < 0.80.
    assert pruner.prune(study, running(study, flat, last_epoch=16))
    # Without a known last epoch every later gain counts, as before.
    assert not pruner.prune(study, running(study, flat))


def test_a_gain_is_what_a_curve_rose_after_the_epoch_never_a_peak_before_it() -> None:
    peaked_early = {2: 0.70, 4: 0.80, 6: 0.75, 8: 0.76}
    assert largest_gain_after(peaked_early, 6, None) == pytest.approx(0.01)  # not 0.80 - 0.75
    assert largest_gain_after(peaked_early, 4, 6) == 0.0
    assert largest_gain_after(peaked_early, 3, None) is None  # no score at epoch 3


def test_the_search_gives_each_trial_its_last_epoch(space, base_config, tmp_path) -> None:
    settings = SearchSettings(space=space, base_config=base_config, output=tmp_path, trials=4, seed=3)
    search = Search(settings, SimulatedExecutor())
    search.run()
    trained = [t for t in search.study.get_trials() if t.user_attrs.get("outcome") != "rejected"]
    assert trained and all(t.user_attrs[LAST_EPOCH_ATTR] == t.params["max_train_epochs"] for t in trained)


def test_catchup_is_the_default_pruner_and_is_built_without_deprecated_knobs() -> None:
    assert SearchSettings.__dataclass_fields__["pruner"].default == "catchup"
    pruner = make_pruner("catchup", max_epochs=24)
    assert isinstance(pruner, CatchUpPruner) and pruner.n_startup_trials == 5


def test_the_catchup_pruner_stops_trials_through_the_seam_and_keeps_their_scores(space, base_config,
                                                                                  tmp_path) -> None:
    settings = SearchSettings(space=space, base_config=base_config, output=tmp_path, trials=10, seed=5,
                              pruner="catchup", patience=0)
    search = Search(settings, SimulatedExecutor())
    search.run()
    trials = json.loads((tmp_path / RESULTS_FILE).read_text())["trials"]
    pruned = [t for t in trials if t["outcome"] == "pruned"]
    complete = [t for t in trials if t["outcome"] == "complete"]
    assert pruned, "the catch-up pruner stopped no trial in 10"
    best = max(t["value"] for t in complete)
    for entry in pruned:
        scores = {int(epoch): score for epoch, score in entry["epoch_scores"].items()}
        assert max(scores) < entry["params"]["max_train_epochs"] and max(scores.values()) < best
        assert entry["reason"].startswith("stopped by the catchup pruner")
