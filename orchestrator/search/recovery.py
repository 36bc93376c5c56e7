"""Recovery: what a search does about trials that lost their worker.

* An *orphan* is a trial whose orchestrator on this machine died (its ``worker`` claim names a dead local
  process). Its trainer may still live in tmux: the resume re-adopts it through the executor and the
  trial finishes as if nothing happened; when nothing survived, the trial is failed and re-queued with
  the same parameters -- unless the search schedules epochs and the run left a saved training state: then
  it pauses there (``Schedule.pause_after_crash``), since a re-queued copy would train its epochs again. A
  run that was being resumed is adopted as that segment (from its paused epoch). A trial the heartbeat
  already failed and re-queued has its trainer stopped, so it does not train twice.
* An *abandoned* trial was asked by a worker that died before it could claim it (``claims.py``): nothing
  was trained, so it is failed (``abandoned``, not counted) and re-queued when it already had parameters.

Trials of dead workers on other machines are Optuna's heartbeat's to find (``storage.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import optuna
from optuna.trial import FrozenTrial, TrialState

from orchestrator.search import vocabulary as vocab
from orchestrator.search.claims import abandoned, is_unclaimed
from orchestrator.search.executor import TrialExecutor, TrialOutcome, TrialRequest
from orchestrator.search.optuna_adapter import heartbeat
from orchestrator.search.vocabulary import (
    BEST_SCORE_ATTR,
    DIRECTORY_ATTR,
    FAILURE_CAUSE_ATTR,
    GPUS_ATTR,
    OUTCOME_ATTR,
    PHASE_ATTR,
    PHASE_PAUSED,
    STOP_REQUESTED_ATTR,
    WORKER_ATTR,
)
from orchestrator.search.workspace import WorkerIdentity

log = logging.getLogger(__name__)


class Search(Protocol):
    """What recovery and the scheduler (``scheduled.py``) use of :class:`~orchestrator.search.study.Search`:
    its study, and the steps of its loop that adopt, run, tell and retry a trial (recovery is the part of the
    loop that runs on a resume; the scheduler runs a paused trial's next segment)."""

    study: optuna.Study
    storage: optuna.storages.BaseStorage
    settings: Any  # settings.SearchSettings
    executor: TrialExecutor
    worker: WorkerIdentity
    adopted: list[int]
    _stop_reasons: dict[int, str]
    _retry: optuna.storages.RetryHeartbeatStaleTrialCallback
    schedule: Any  # scheduled.Schedule, or None when the search does not schedule epochs

    def _trial_id(self, number: int) -> int: ...

    def _request_for(self, frozen: FrozenTrial, directory: Path) -> TrialRequest: ...

    def _execute(self, trial: optuna.Trial, request: TrialRequest, *, adopt: bool,
                 already_reported: Mapping[int, float] | None = None) -> TrialOutcome | None: ...

    def _finish(self, trial: optuna.Trial, outcome: TrialOutcome, start_epoch: int = 1) -> str: ...

    def _tell(self, trial: optuna.Trial, outcome: str, state: TrialState, value: float | None = None) -> str: ...

    def write_results(self) -> Path | None: ...


def fail_abandoned(search: Search, *, wait: bool = False) -> None:
    """Fail the trials asked by a worker that died before claiming them (claims.py), re-queueing those
    that had parameters. ``wait``: also wait out the unclaimed ones still young enough to be claimed, so
    that a search never ends with a trial left RUNNING."""
    while True:
        trials = search.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        for frozen in abandoned(trials, claim_seconds=search.settings.claim_seconds):
            trial = optuna.trial.Trial(search.study, search._trial_id(frozen.number))
            try:
                trial.set_user_attr(WORKER_ATTR, search.worker.as_text())
                trial.set_user_attr(FAILURE_CAUSE_ATTR, "its orchestrator died between asking for the trial "
                                                     "and claiming it; nothing was trained")
                search._tell(trial, vocab.ABANDONED, TrialState.FAIL)
            except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError, ValueError):
                continue  # another worker got there first
            if frozen.params:
                search._retry(search.study, search.storage.get_trial(search._trial_id(frozen.number)))
        waiting = [t for t in search.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                   if is_unclaimed(t)]
        if not wait or not waiting:
            return
        time.sleep(min(1.0, search.settings.claim_seconds))



def recover_orphans(search: Search) -> None:
    """Adopt or retry the RUNNING trials whose orchestrator on this machine has died, and stop the
    trainers of trials that the heartbeat already failed and re-queued (they would train twice)."""
    for frozen in search.study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if not _may_recover(search, frozen):
            continue
        owner = WorkerIdentity.parse(str(frozen.user_attrs.get(WORKER_ATTR, "")))
        directory = frozen.user_attrs.get(DIRECTORY_ATTR)
        if (frozen.user_attrs.get(OUTCOME_ATTR) is None and directory and Path(directory).is_dir()
                and owner is not None and owner.is_dead_local_process()):
            search.executor.stop_orphan(search._request_for(frozen, Path(directory)))
    for frozen in search.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if frozen.user_attrs.get(PHASE_ATTR) == PHASE_PAUSED:
            continue  # not an orphan: its state is saved and the scheduler resumes it (scheduled.py)
        owner = WorkerIdentity.parse(str(frozen.user_attrs.get(WORKER_ATTR, "")))
        if owner is None or not owner.is_dead_local_process() or not _may_recover(search, frozen):
            continue  # another live worker's, or not ours to judge: the heartbeat decides
        try:
            with heartbeat(search.storage, search._trial_id(frozen.number)):
                _recover(search, frozen, owner)
        except optuna.exceptions.UpdateFinishedTrialError:
            log.warning("trial %d was failed by another worker while this one recovered it", frozen.number)

def resumed_from(trial: FrozenTrial) -> int | None:
    """The epoch a run being resumed continues from (its ``paused_at``), None for any other run."""
    if trial.user_attrs.get(PHASE_ATTR) != vocab.PHASE_RESUMED or trial.user_attrs.get(vocab.PAUSED_AT_ATTR) is None:
        return None
    return int(trial.user_attrs[vocab.PAUSED_AT_ATTR])



def _may_recover(search: Search, frozen: FrozenTrial) -> bool:
    return not search.settings.own_gpu_orphans_only or frozen.user_attrs.get(GPUS_ATTR) == search.settings.gpus

# The state a trial's recorded outcome is told with (Search._tell writes the outcome just before the tell).
# Not a failure: the path that fails a trial may also re-queue it, which the old recovery below still does.
_TOLD_STATES = {vocab.COMPLETE: TrialState.COMPLETE, vocab.PRUNED: TrialState.PRUNED,
                vocab.REJECTED: TrialState.PRUNED, vocab.SURPLUS: TrialState.FAIL}


def _finish_cut_tell(search: Search, trial: optuna.Trial, frozen: FrozenTrial) -> bool:
    """The orchestrator died between recording a trial's outcome and telling Optuna: tell it now, as it
    was about to (a re-queued copy would train the whole run again). False when there is nothing to tell."""
    outcome = frozen.user_attrs.get(OUTCOME_ATTR)
    state = _TOLD_STATES.get(str(outcome))
    if state is None:
        return False
    value = frozen.user_attrs.get(BEST_SCORE_ATTR)
    if state == TrialState.COMPLETE and value is None:
        value = max(frozen.intermediate_values.values(), default=None)
        if value is None:
            return False
    log.info("trial %d: its orchestrator died while telling %s; told now", frozen.number, outcome)
    search._tell(trial, str(outcome), state,
                 value=float(value) if state == TrialState.COMPLETE and value is not None else None)
    return True


def _recover(search: Search, frozen: FrozenTrial, owner: WorkerIdentity) -> None:
    trial_id = search._trial_id(frozen.number)
    trial = optuna.trial.Trial(search.study, trial_id)
    trial.set_user_attr(WORKER_ATTR, search.worker.as_text())
    if _finish_cut_tell(search, trial, frozen):
        return
    directory = frozen.user_attrs.get(DIRECTORY_ATTR)
    if directory and Path(directory).is_dir() and frozen.user_attrs.get(OUTCOME_ATTR) is None:
        # A run that was being resumed: its segment continues from the epoch it paused at.
        resumed = resumed_from(frozen) if search.schedule is not None else None
        request = replace(search._request_for(frozen, Path(directory)), resume_from=resumed,
                          scored_through=None if resumed is None else max(frozen.intermediate_values, default=0))
        if frozen.user_attrs.get(STOP_REQUESTED_ATTR):
            search._stop_reasons[frozen.number] = str(frozen.user_attrs[STOP_REQUESTED_ATTR])
        outcome = search._execute(trial, request, adopt=True, already_reported=frozen.intermediate_values)
        if outcome is not None:
            log.info("trial %d: re-adopted the trainer of a dead orchestrator", frozen.number)
            search.adopted.append(frozen.number)
            search._finish(trial, outcome, (resumed or 0) + 1)
            return
        if search.schedule is not None and search.schedule.pause_after_crash(trial, request, (resumed or 0) + 1):
            log.info("trial %d: its trainer died with the orchestrator; paused at its saved state", frozen.number)
            return
    trial.set_user_attr(FAILURE_CAUSE_ATTR, f"the orchestrator (pid {owner.pid}) died and no trainer "
                                         "survived; re-queued with the same parameters")
    search._tell(trial, vocab.FAILED, TrialState.FAIL)
    search._retry(search.study, search.storage.get_trial(trial_id))
