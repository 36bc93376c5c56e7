"""A crash never costs a scheduled run its saved state (scheduled.py, recovery.py): a failed segment with
a scored state pauses the run again once, a resumed run whose trainer died with its orchestrator pauses at
its state instead of being failed and trained again, and a segment recorded twice counts its GPU time once."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from optuna.trial import TrialState

from orchestrator.search import vocabulary as vocab
from orchestrator.search.executor import SearchAborted, TrialOutcome
from orchestrator.search.scheduled import SEGMENT_RETRIES, is_paused, record_segment
from orchestrator.search.simulator import SimulatedExecutor
from orchestrator.search.study import Search, SearchSettings
from orchestrator.search.surfaces import SURFACE_FAMILIES
from tests.search.test_scheduler import BASE, SPACE

STUDY = "lora_hyperparameter_search"


def first_epoch_search(tmp_path: Path, executor: SimulatedExecutor, *, trials: int = 3,
                       storage: str = "memory") -> Search:
    settings = SearchSettings(space=SPACE, base_config=BASE, output=tmp_path, trials=trials, seed=3,
                              storage_url=storage, pruner="none", scheduler="first-epoch",
                              write_files=storage != "memory")
    return Search(settings, executor)


class DiesOnResume(SimulatedExecutor):
    """The orchestrator goes away as it takes a paused run up."""

    def run(self, request, report):  # type: ignore[no-untyped-def]
        if request.resume_from is not None:
            raise SearchAborted("the orchestrator went away")
        return super().run(request, report)


def search_whose_orchestrator_dies_at_its_first_resume(tmp_path: Path, surface, storage: str) -> Search:
    first = first_epoch_search(tmp_path, DiesOnResume(surface=surface), storage=storage)
    try:
        first.run()
    except SearchAborted:
        pass
    return first


class CrashesOnResume(SimulatedExecutor):
    """Trial 0's resumed segments crash at epoch 3 (after its state of epoch 2 was saved and scored);
    ``times`` crashes in all."""

    times = 1

    def run(self, request, report):  # type: ignore[no-untyped-def]
        self.crash_trials = (0,) if request.number == 0 and request.resume_from is not None and self.times else ()
        outcome = super().run(request, report)
        if outcome.failure_cause:
            self.times -= 1
        return outcome


def test_a_resumed_segment_that_crashes_once_pauses_again_and_the_run_finishes(tmp_path) -> None:
    executor = CrashesOnResume(surface=SURFACE_FAMILIES["quadratic"](seed=1), record_progress=False)
    search = first_epoch_search(tmp_path, executor)
    search.run()
    trial = search.study.get_trials(deepcopy=False)[0]
    assert trial.state == TrialState.COMPLETE, trial.user_attrs.get(vocab.FAILURE_CAUSE_ATTR)
    assert trial.user_attrs[vocab.SEGMENT_FAILURES_ATTR] == 1
    assert trial.user_attrs[vocab.FAILURE_CAUSE_ATTR] is None
    assert trial.user_attrs[vocab.PHASE_ATTR] in (vocab.PHASE_FINISHED, vocab.PHASE_STOPPED)
    segments = trial.user_attrs[vocab.SEGMENTS_ATTR]
    assert [segment[0] for segment in segments] == [1, 3, 3]  # the crashed stretch started at 3, as its retry
    trained = executor.trained_epochs[(STUDY, 0)]
    assert trained[:2] == [1, 2] and trained.count(2) == 1, "the retry went on from the saved state of epoch 2"


def test_a_run_whose_resumed_segments_keep_crashing_fails_after_its_one_retry(tmp_path) -> None:
    executor = CrashesOnResume(surface=SURFACE_FAMILIES["quadratic"](seed=1), record_progress=False)
    executor.times = SEGMENT_RETRIES + 5
    search = first_epoch_search(tmp_path, executor)
    search.run()
    trial = search.study.get_trials(deepcopy=False)[0]
    assert trial.state == TrialState.FAIL and "simulated trainer crash" in trial.user_attrs[vocab.FAILURE_CAUSE_ATTR]
    assert trial.user_attrs[vocab.SEGMENT_FAILURES_ATTR] == SEGMENT_RETRIES
    assert len(trial.user_attrs[vocab.SEGMENTS_ATTR]) == 2 + SEGMENT_RETRIES


def test_a_resumed_run_whose_trainer_died_with_its_orchestrator_pauses_at_its_state(tmp_path) -> None:
    surface, storage = SURFACE_FAMILIES["quadratic"](seed=1), f"sqlite:///{tmp_path / 'study.db'}"
    first = search_whose_orchestrator_dies_at_its_first_resume(tmp_path, surface, storage)
    paused = [t for t in first.study.get_trials(deepcopy=False) if is_paused(t)]
    assert paused
    number = paused[0].number
    # Died after marking the run resumed, its trainer gone with it (a reboot): nothing to adopt.
    trial_id = first._trial_id(number)
    first.storage.set_trial_user_attr(trial_id, vocab.PHASE_ATTR, vocab.PHASE_RESUMED)
    first.storage.set_trial_user_attr(trial_id, vocab.WORKER_ATTR, f"{socket.gethostname()}:{os.getpid()}:1.00")
    before = paused[0].user_attrs[vocab.GPU_SECONDS_ATTR]

    executor = SimulatedExecutor(surface=surface)  # trainer_survives=False: adopt finds nothing
    second = first_epoch_search(tmp_path, executor, storage=storage)
    second.recover_orphans()
    trial = second.study.get_trials(deepcopy=False)[number]
    assert is_paused(trial), (trial.state, trial.user_attrs.get(vocab.FAILURE_CAUSE_ATTR))
    assert trial.user_attrs[vocab.PAUSED_AT_ATTR] == paused[0].user_attrs[vocab.PAUSED_AT_ATTR]
    assert len(second.study.get_trials(deepcopy=False)) == len(first.study.get_trials(deepcopy=False)), \
        "no retry was queued: the run continues from its state"
    assert trial.user_attrs[vocab.GPU_SECONDS_ATTR] == before
    second.run()
    trial = second.study.get_trials(deepcopy=False)[number]
    assert trial.state == TrialState.COMPLETE
    assert executor.trained_epochs[(STUDY, number)][0] == paused[0].user_attrs[vocab.PAUSED_AT_ATTR] + 1


def test_a_segment_recorded_again_after_a_crash_replaces_itself() -> None:
    first = TrialOutcome(gpu_seconds=30.0, segment_started="2026-12-07T05:00:00")
    segments = record_segment([], 1, 2, first)
    again = TrialOutcome(gpu_seconds=30.0, segment_started="2026-12-07T05:00:00")  # no new epoch: 3..2
    assert record_segment(segments, 3, 2, again) == [[1, 2, 30.0, "2026-12-07T05:00:00"]]
    resumed = TrialOutcome(gpu_seconds=20.0, segment_started="2026-12-07T06:00:00")
    assert record_segment(segments, 3, 4, resumed) == [[1, 2, 30.0, "2026-12-07T05:00:00"],
                                                       [3, 4, 20.0, "2026-12-07T06:00:00"]]
    unnamed = TrialOutcome(gpu_seconds=5.0)  # an executor that does not name its segments: appended
    assert len(record_segment(segments, 3, 4, unnamed)) == 2


class Killed(BaseException):
    """The orchestrator killed mid-trial (not an error the search catches)."""


def test_a_retried_trial_of_a_scheduled_search_records_its_segments(tmp_path) -> None:
    """A retry starts with its user attributes cleared to None (Optuna copies them); the chaos run found
    the scheduler then failing on the cleared segments, ending the whole search."""
    surface = SURFACE_FAMILIES["quadratic"](seed=1)

    class DiesResumingTrialZero(SimulatedExecutor):  # after trial 0 recorded its first segment
        def run(self, request, report):  # type: ignore[no-untyped-def]
            if request.number == 0 and request.resume_from is not None:
                raise Killed
            return super().run(request, report)

    class StateLost(SimulatedExecutor):  # nothing to continue from: the trial is failed and re-queued
        def saved_epoch(self, request):  # type: ignore[no-untyped-def]
            return None if request.number == 0 else super().saved_epoch(request)

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first = first_epoch_search(tmp_path, DiesResumingTrialZero(surface=surface), storage=storage)
    try:
        first.run()
    except Killed:
        pass
    first.storage.set_trial_user_attr(first._trial_id(0), vocab.WORKER_ATTR,
                                      f"{socket.gethostname()}:{os.getpid()}:1.00")  # its process is gone
    second = first_epoch_search(tmp_path, StateLost(surface=surface), storage=storage)
    second.run()
    trials = second.study.get_trials(deepcopy=False)
    assert trials[0].user_attrs[vocab.SEGMENTS_ATTR], "trial 0 had recorded a segment before it died"
    assert trials[0].state == TrialState.FAIL and "re-queued" in trials[0].user_attrs[vocab.FAILURE_CAUSE_ATTR]
    retry = next(t for t in trials if t.params == trials[0].params and t.number != 0)
    assert retry.state == TrialState.COMPLETE and retry.user_attrs[vocab.SEGMENTS_ATTR]


def test_a_state_newer_than_the_runs_last_score_is_scored_when_the_run_continues(tmp_path) -> None:
    """The dead segment saved the state of epoch 4 and died before scoring it: the run pauses at 4 (not
    failed and trained again) and its next segment scores epoch 4 from what was left, then trains on from 5."""
    surface, storage = SURFACE_FAMILIES["quadratic"](seed=1), f"sqlite:///{tmp_path / 'study.db'}"
    first = search_whose_orchestrator_dies_at_its_first_resume(tmp_path, surface, storage)
    frozen = next(t for t in first.study.get_trials(deepcopy=False) if is_paused(t))
    assert frozen.user_attrs[vocab.PAUSED_AT_ATTR] == 2 and sorted(frozen.intermediate_values) == [2]
    first.storage.set_trial_user_attr(first._trial_id(frozen.number), vocab.PHASE_ATTR, vocab.PHASE_RESUMED)
    first.storage.set_trial_user_attr(first._trial_id(frozen.number), vocab.WORKER_ATTR,
                                      f"{socket.gethostname()}:{os.getpid()}:1.00")

    class SavedFour(SimulatedExecutor):
        def saved_epoch(self, request):  # type: ignore[no-untyped-def]
            return 4 if request.number == frozen.number and (STUDY, frozen.number) not in self.saved_states \
                else super().saved_epoch(request)

    executor = SavedFour(surface=surface)
    second = first_epoch_search(tmp_path, executor, storage=storage)
    second.recover_orphans()
    assert second.study.get_trials(deepcopy=False)[frozen.number].user_attrs[vocab.PAUSED_AT_ATTR] == 4
    second.run()
    trial = second.study.get_trials(deepcopy=False)[frozen.number]
    assert trial.state == TrialState.COMPLETE
    assert sorted(trial.intermediate_values)[:3] == [2, 4, 6], "epoch 4 scored when the run continued"
    assert executor.trained_epochs[(STUDY, frozen.number)][0] == 5


def test_a_run_whose_orchestrator_died_while_telling_it_complete_is_told_not_trained_again(tmp_path) -> None:
    """Found by the chaos run (a kill inside ``tell``): the outcome was recorded, the tell was not; the
    resume tells it as recorded instead of failing and re-queueing a run that had finished."""
    surface = SURFACE_FAMILIES["quadratic"](seed=1)

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first = first_epoch_search(tmp_path, SimulatedExecutor(surface=surface), storage=storage)
    real_tell = first.study.tell

    def tell(trial, *args, **kwargs):  # type: ignore[no-untyped-def]
        number = trial if isinstance(trial, int) else trial.number
        if number == 0 and kwargs.get("state") is None and args:  # COMPLETE with a value
            raise Killed
        return real_tell(trial, *args, **kwargs)

    first.study.tell = tell  # type: ignore[method-assign]
    try:
        first.run()
    except Killed:
        pass
    cut = first.study.get_trials(deepcopy=False)[0]
    assert cut.state == TrialState.RUNNING and cut.user_attrs[vocab.OUTCOME_ATTR] == vocab.COMPLETE
    first.storage.set_trial_user_attr(first._trial_id(0), vocab.WORKER_ATTR,
                                      f"{socket.gethostname()}:{os.getpid()}:1.00")
    executor = SimulatedExecutor(surface=surface)
    second = first_epoch_search(tmp_path, executor, storage=storage)
    second.run()
    trials = second.study.get_trials(deepcopy=False)
    assert trials[0].state == TrialState.COMPLETE and trials[0].value == cut.user_attrs[vocab.BEST_SCORE_ATTR]
    assert not [t for t in trials if t.number != 0 and t.params == trials[0].params], "nothing re-queued"
    assert (STUDY, 0) not in executor.trained_epochs
