"""The catch-up pruner with late learners: curves cut by patience are no evidence of what a climbing run
has left, the trial's own curve and validation loss count, and a clear loser is still stopped."""

from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from orchestrator.search.curve_bound import reachable_score
from orchestrator.search.optuna_adapter import quiet_optuna_notices
from orchestrator.search.pruning import CatchUpPruner, is_evidence_at
from orchestrator.search.vocabulary import LAST_EPOCH_ATTR, VALIDATION_LOSS_ATTR

X = {"x": FloatDistribution(0.0, 1.0)}
# Fast learners: peak 0.80 at epoch 6, then patience stopped them at epoch 10.
FAST_CUT = [{2: 0.70, 4: 0.77, 6: 0.80, 8: 0.795, 10: 0.79}, {2: 0.69, 4: 0.76, 6: 0.79, 8: 0.785, 10: 0.78},
            {2: 0.68, 4: 0.76, 6: 0.785, 8: 0.78, 10: 0.775}]
# A slow learner of a 24-epoch run, still climbing about 0.03 an epoch at epoch 8.
LATE_RISING = {2: 0.50, 4: 0.575, 6: 0.64, 8: 0.70}


def loss_of(curve: dict[int, float]) -> dict[str, float]:
    """A validation loss that follows the score (0.2 - 0.1 * score), with a little noise of its own."""
    return {str(e): round(0.2 - 0.1 * s + 0.0004 * ((e * 7) % 3 - 1), 6) for e, s in curve.items()}


def study_of(curves: list[dict[int, float]], *, cut_by_patience: bool) -> optuna.Study:
    quiet_optuna_notices()
    study = optuna.create_study(direction="maximize")
    attrs = {"stop_requested": "past_peak", "stopped_early": True} if cut_by_patience else {}
    for curve in curves:
        study.add_trial(create_trial(params={"x": 0.5}, distributions=X, value=max(curve.values()),
                                     intermediate_values=curve, state=TrialState.COMPLETE,
                                     user_attrs={**attrs, VALIDATION_LOSS_ATTR: loss_of(curve)}))
    return study


def running(study: optuna.Study, curve: dict[int, float], *, last_epoch: int = 24,
            losses: dict[int, float] | None = None) -> optuna.trial.FrozenTrial:
    trial = study.ask(X)
    trial.set_user_attr(LAST_EPOCH_ATTR, last_epoch)
    if losses is not None:
        trial.set_user_attr(VALIDATION_LOSS_ATTR, {str(e): v for e, v in losses.items()})
    for epoch, score in curve.items():
        trial.report(score, epoch)
    return study._storage.get_trial(trial._trial_id)


def test_a_late_learner_still_climbing_is_kept_when_the_finished_curves_were_cut_by_patience() -> None:
    study = study_of(FAST_CUT, cut_by_patience=True)
    trial = running(study, LATE_RISING)
    # The old bound: at epoch 8 the cut curves gained at most 0.0 more, and 0.70 + 0 < 0.80.
    assert not any(is_evidence_at(t, 8) for t in study.trials if t.state == TrialState.COMPLETE)
    assert not CatchUpPruner(n_startup_trials=3).prune(study, trial)


def test_the_late_learner_is_kept_by_its_own_curve_even_where_the_finished_curves_count() -> None:
    study = study_of(FAST_CUT, cut_by_patience=False)  # ran to their end: gaining nothing after 8 is evidence
    assert CatchUpPruner(n_startup_trials=3).prune(study, running(study, {2: 0.50, 4: 0.51, 6: 0.515, 8: 0.52}))
    assert not CatchUpPruner(n_startup_trials=3).prune(study, running(study, LATE_RISING))


def test_a_clear_loser_is_still_stopped() -> None:
    study = study_of(FAST_CUT, cut_by_patience=True)
    loser = {2: 0.58, 4: 0.60, 6: 0.605, 8: 0.60}
    assert CatchUpPruner(n_startup_trials=3).prune(study, running(study, loser, losses={
        e: 0.2 - 0.1 * s for e, s in loser.items()}))


def test_a_still_falling_validation_loss_keeps_a_run_whose_score_looks_saturated() -> None:
    study = study_of(FAST_CUT, cut_by_patience=True)
    saturating = {2: 0.60, 4: 0.68, 6: 0.72, 8: 0.74, 10: 0.75}  # bends over towards about 0.76
    pruner = CatchUpPruner(n_startup_trials=3)
    assert pruner.prune(study, running(study, saturating))
    falling = {2: 0.150, 4: 0.1405, 6: 0.1300, 8: 0.1204, 10: 0.1100}  # the loss keeps falling in a line
    assert not pruner.prune(study, running(study, saturating, losses=falling))


def test_the_own_curve_bound_follows_a_saturating_curve_and_widens_with_noise() -> None:
    curve = {e: 0.80 - 0.3 * 2.718281828 ** (-0.25 * e) for e in (2, 4, 6, 8, 10)}
    plateau_bound = reachable_score(curve, 24, noise=0.002)
    assert 0.79 < plateau_bound < 0.83  # near the plateau, not the line through the last points
    assert reachable_score(curve, 24, noise=0.02) > plateau_bound
    assert reachable_score({2: 0.5}, 24, noise=0.002) == float("inf")  # one point: no pace yet
