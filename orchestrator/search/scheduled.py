"""The search as a scheduler of epochs over resumable runs: the glue between ``scheduler.py`` and Optuna.

How a paused run is kept in Optuna, and why. A paused run is an unfinished trial: its curve so far is in
its intermediate values, it has a best checkpoint on disk, and it may continue. Optuna has no "paused"
state and a finished trial cannot be re-opened (``tell`` is final), so a paused run stays **RUNNING** with
the user attribute ``phase = "paused"`` (and ``paused_at`` = its saved epoch). Telling it PRUNED or
COMPLETE and enqueueing a copy to resume would split its curve over two trials and make TPE count it
twice. Three things must know the phase:

* stale-heartbeat recovery: a paused run has no trainer and so no heartbeat; Optuna's
  ``fail_stale_trials`` would fail it after the grace period. :func:`fail_stale_unpaused` does the same
  work for every stale trial but a paused one (the search calls it instead of Optuna's).
* orphan recovery (``Search.recover_orphans``): a paused run is not an orphan (nothing to adopt); a
  restarted search finds it paused and the scheduler may resume it.
* TPE: it samples from COMPLETE and PRUNED trials only, so while runs are paused it sees them through
  :class:`PausedAwareTPESampler` as COMPLETE at their predicted final best (``predicted_final``).

When the search ends, a run still paused is told COMPLETE with its best score so far and
``phase = "stopped"``: its best checkpoint is real, and it is the scheduler's verdict that the rest of it
could not beat the best.

A crash never costs a paused run its state. A segment whose trainer failed (killed, out of memory) or died
with its orchestrator, leaving the state of an epoch it scored, pauses the run there instead of failing it
(once: ``SEGMENT_RETRIES``; a run that fails again fails); the crash was not the scheduler's decision,
so such a run is the first to continue when the GPU is free. Each segment is recorded under its trainer's
start, so that a segment recorded again by a resumed orchestrator replaces itself, and the run's GPU
seconds are the sum of its segments'.

Several workers on one study (``--parallel-gpus``, or PostgreSQL workers on several machines) schedule
with the same rules, each when its own GPU is free. A paused run resumes on whichever worker can read its
saved state (the executor's ``state_bytes``): any GPU of its machine, or another machine only through a
shared output folder. A worker that cannot read it leaves it to the workers that can, and does not close it
when its own search ends. Taking a paused run up is a claim made under a lock in the output folder (the
folder that holds the states, so every worker that can read a state shares the lock): the run is re-read
there, and only a run still paused is taken.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from orchestrator.common.file_lock import FileLock
from orchestrator.search import results as res
from orchestrator.search import scheduler as sched
from orchestrator.search import vocabulary as vocab
from orchestrator.search.curve_model import CurveModel, CurveState, Pace
from orchestrator.search.executor import TrialOutcome, TrialRequest, best_epoch_of
from orchestrator.search.merge import flatten_training_tables, merge_trial_config
from orchestrator.search.optuna_adapter import BaseHeartbeat, heartbeat, stale_trial_ids, storage_of
from orchestrator.search.recovery import Search
from orchestrator.search.surfaces import trial_sample_epochs

PHASE_ATTR, PAUSED_AT_ATTR, PROMOTED_ATTR = vocab.PHASE_ATTR, vocab.PAUSED_AT_ATTR, vocab.PROMOTED_ATTR
PREDICTED_ATTR, SEGMENTS_ATTR = vocab.PREDICTED_ATTR, vocab.SEGMENTS_ATTR
RESUME_LOCK = ".resume.lock"  # in the search's output folder: one claim of a paused run at a time
NOT_RESUMED = "not_resumed"  # resume's outcome when another worker took the run first, or its state is elsewhere
SEGMENT_RETRIES = 1  # failed segments that pause a run again (at its saved state) before one fails it


def fail_stale_unpaused(study: optuna.Study) -> None:
    """Optuna's ``fail_stale_trials`` for every stale trial except a paused one (it has no trainer to beat)."""
    storage = storage_of(study)
    failed = []
    for trial_id in stale_trial_ids(study):
        if storage.get_trial(trial_id).user_attrs.get(PHASE_ATTR) == vocab.PHASE_PAUSED:
            continue
        try:
            if storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                failed.append(trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another process failed it first
    callback = storage.get_heartbeat_stale_trial_callback() if isinstance(storage, BaseHeartbeat) else None
    if callback is not None:
        for trial_id in failed:
            callback(study, copy.deepcopy(storage.get_trial(trial_id)))


def is_paused(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.RUNNING and trial.user_attrs.get(PHASE_ATTR) == vocab.PHASE_PAUSED


class Schedule:
    """One search's scheduler state: the strategy, the budget, and the views of its runs."""

    def __init__(self, search: Search) -> None:
        self.search = search
        self.strategy = search.settings.scheduler
        self.total_seconds = None if search.settings.gpu_hours is None else search.settings.gpu_hours * 3600
        self._flat: dict[int, dict[str, Any]] = {}
        self._shape: dict[int, tuple[Pace, tuple[int, ...]]] = {}  # fixed per run; asked at every decision
        self._model: tuple[Any, CurveModel] | None = None
        self._predicted: dict[int, float] = {}
        self._elsewhere: set[int] = set()  # paused runs whose state this worker cannot read

    # ---------------------------------------------------------------------------------- views
    def flat_of(self, trial: FrozenTrial) -> dict[str, Any]:
        if trial.number not in self._flat:
            settings = self.search.settings
            config = merge_trial_config(settings.base_config, settings.space.training_overrides(trial.params))
            self._flat[trial.number] = {**flatten_training_tables(config), **trial.params}
        return self._flat[trial.number]

    def view_of(self, trial: FrozenTrial, scores: dict[int, float] | None = None, phase: str | None = None,
                gpu_seconds: float | None = None) -> sched.RunView:
        if trial.number not in self._shape:
            flat = self.flat_of(trial)
            self._shape[trial.number] = (Pace.of(flat), tuple(trial_sample_epochs(flat)))
        pace, sample_epochs = self._shape[trial.number]
        scores = dict(trial.intermediate_values) if scores is None else scores
        losses = {int(e): float(v) for e, v in (trial.user_attrs.get(vocab.VALIDATION_LOSS_ATTR) or {}).items()}
        curve = CurveState(pace, sample_epochs, scores, losses)
        spent = float(trial.user_attrs.get(vocab.GPU_SECONDS_ATTR) or 0.0) if gpu_seconds is None else gpu_seconds
        epochs = max(scores, default=0)
        phase = phase or ("paused" if is_paused(trial) else "finished")
        return sched.RunView(trial.number, curve, phase,  # type: ignore[arg-type]
                             spent / epochs if epochs else 0.0, bool(trial.user_attrs.get(PROMOTED_ATTR)))

    def runs(self) -> list[sched.RunView]:
        views = []
        for trial in self.search.study.get_trials(deepcopy=False):
            if not trial.intermediate_values:
                continue
            if trial.state == TrialState.COMPLETE:
                finished = trial.user_attrs.get(PHASE_ATTR) in (vocab.PHASE_FINISHED, None)
                views.append(self.view_of(trial, phase="finished" if finished else "stopped"))
            elif is_paused(trial) and trial.number not in self._elsewhere:
                views.append(self.view_of(trial, phase="paused"))
        return views

    def budget(self) -> sched.Budget:
        trials = self.search.study.get_trials(deepcopy=False)
        spent = sum(float(t.user_attrs.get(vocab.GPU_SECONDS_ATTR) or 0.0) for t in trials)
        return sched.Budget(spent, self.total_seconds, len(res.counted_trials(trials)), self.search.settings.trials)

    # ------------------------------------------------------------------------------- decisions
    def at_rung(self, trial: optuna.Trial, scores: dict[int, float], segment_seconds: float) -> str | None:
        frozen = self.search.storage.get_trial(self.search._trial_id(trial.number))
        spent = float(frozen.user_attrs.get(vocab.GPU_SECONDS_ATTR) or 0.0) + segment_seconds
        run = self.view_of(frozen, dict(scores), "training", spent)
        others = [view for view in self.runs() if view.number != run.number]
        runs = [*others, run]
        model = self.model(runs) if self.strategy != "first-epoch" else None
        return sched.at_rung(self.strategy, run, runs, self.budget(), model)

    def model(self, runs: list[sched.RunView]) -> CurveModel:
        """The learning-curve model, refitted only when a run finished (its examples) or the others' spread
        moved (its prior): a decision is asked after every sample epoch."""
        key = (tuple(sorted(r.number for r in runs if r.phase == "finished")), len(runs))
        if self._model is None or self._model[0] != key:
            self._model = (key, sched.fit_model(runs))
        return self._model[1]

    def next_action(self) -> sched.Action:
        runs = self.runs()
        model = self.model(runs)
        for run in runs:  # what TPE sees of a paused run (PausedAsCompleteSampler); written when it moved
            if run.phase == "paused":
                predicted = round(model.predict(run.curve).mean, 4)
                if self._predicted.get(run.number) != predicted:
                    trial = optuna.trial.Trial(self.search.study, self.search._trial_id(run.number))
                    try:
                        trial.set_user_attr(PREDICTED_ATTR, predicted)
                    except optuna.exceptions.UpdateFinishedTrialError:
                        continue  # another worker finished or closed it since: TPE sees its real value
                    self._predicted[run.number] = predicted
        budget = self.budget()
        crashed = [trial.number for trial in self.search.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                   if is_paused(trial) and trial.user_attrs.get(vocab.CRASH_PAUSED_ATTR)
                   and trial.number not in self._elsewhere]
        if crashed and budget.left_seconds > 0:
            return sched.Action("resume", crashed[0], "its last segment crashed: it goes on from its saved state")
        return sched.next_action(self.strategy, runs, budget, model)

    # ---------------------------------------------------------------------------------- records
    def finish_segment(self, trial: optuna.Trial, outcome: TrialOutcome, start_epoch: int) -> str:
        """Record one trained stretch of a run: paused (stays RUNNING) or finished (COMPLETE)."""
        attrs = trial.user_attrs
        scores = {int(e): float(v) for e, v in (attrs.get(vocab.EPOCH_SCORES_ATTR) or {}).items()}
        scores.update(outcome.epoch_scores)
        best_epoch = best_epoch_of(scores)
        checkpoint = attrs.get(vocab.CHECKPOINT_ATTR)
        if best_epoch is not None and best_epoch == outcome.best_epoch:
            checkpoint = outcome.checkpoint
        segments = record_segment(attrs.get(SEGMENTS_ATTR) or [], start_epoch,  # None: cleared for a retry
                                  max(outcome.epoch_scores, default=start_epoch - 1), outcome)
        spent = sum(float(segment[2]) for segment in segments)
        for key, value in {vocab.BEST_EPOCH_ATTR: best_epoch,
                           vocab.BEST_SCORE_ATTR: scores.get(best_epoch) if best_epoch else None,
                           vocab.CHECKPOINT_ATTR: checkpoint, vocab.GPU_SECONDS_ATTR: round(spent, 1),
                           SEGMENTS_ATTR: segments,
                           vocab.EPOCH_SCORES_ATTR: {str(e): s for e, s in sorted(scores.items())},
                           vocab.FAILURE_CAUSE_ATTR: outcome.failure_cause, vocab.ADOPTED_ATTR: outcome.adopted,
                           vocab.STOPPED_EARLY_ATTR: outcome.stopped_early}.items():
            trial.set_user_attr(key, value)
        if outcome.failure_cause:
            failures = int(attrs.get(vocab.SEGMENT_FAILURES_ATTR) or 0)
            if outcome.paused_at is None or failures >= SEGMENT_RETRIES:
                return self.search._tell(trial, vocab.FAILED, TrialState.FAIL)
            trial.set_user_attr(vocab.SEGMENT_FAILURES_ATTR, failures + 1)
            trial.set_user_attr(vocab.FAILURE_CAUSE_ATTR, None)  # not failed: it continues
            trial.set_user_attr(vocab.CRASH_PAUSED_ATTR, True)
            self.search._stop_reasons.pop(trial.number, None)
            return self._pause(trial, outcome.paused_at, f"its trainer failed ({outcome.failure_cause}); it "
                                                         f"continues from its state of epoch {outcome.paused_at}")
        reason = self.search._stop_reasons.pop(trial.number, "") if outcome.paused_at is not None else ""
        if outcome.paused_at is not None and not sched.pause_is_final(self.strategy, reason):
            return self._pause(trial, outcome.paused_at, reason)
        if outcome.paused_at is not None:  # it will never continue: its state is only disk
            self.search.executor.discard_state(
                self._request(self.search.storage.get_trial(self.search._trial_id(trial.number))))
            trial.set_user_attr(vocab.EARLY_STOP_REASON_ATTR, f"past its peak at epoch {outcome.paused_at}: "
                                                             "ended, as the first-epoch rule never resumes it")
        if best_epoch is None:
            trial.set_user_attr(vocab.FAILURE_CAUSE_ATTR, "the run finished without an evaluated epoch")
            return self.search._tell(trial, vocab.FAILED, TrialState.FAIL)
        trial.set_user_attr(PHASE_ATTR, vocab.PHASE_FINISHED)
        return self.search._tell(trial, vocab.COMPLETE, TrialState.COMPLETE, value=scores[best_epoch])

    def _pause(self, trial: optuna.Trial, epoch: int, reason: str) -> str:
        trial.set_user_attr(PHASE_ATTR, vocab.PHASE_PAUSED)
        trial.set_user_attr(PAUSED_AT_ATTR, epoch)
        trial.set_user_attr(vocab.PAUSE_REASON_ATTR, reason)
        self.search.write_results()
        evicted = self.keep_within_state_budget()
        return vocab.COMPLETE if trial.number in evicted else vocab.PAUSED

    def keep_within_state_budget(self) -> list[int]:
        """Over ``--state-budget``, the least promising paused runs (the model's predicted final best, else
        their best so far: ``predicted_value``) lose their saved state, least promising first, until the rest
        fit (``runner/state_budget.states_to_discard``); each becomes final at its best so far, ``phase =
        "evicted"``. Returns their numbers."""
        from orchestrator.runner.state_budget import states_to_discard

        budget = self.search.settings.state_budget_bytes
        if budget is None:
            return []
        paused = sorted((trial for trial in self.search.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                         if is_paused(trial) and trial.intermediate_values), key=predicted_value)
        requests = {trial.number: self._request(trial) for trial in paused}
        sized = [(trial.number, self.search.executor.state_bytes(requests[trial.number])) for trial in paused]
        evicted = states_to_discard(sized, budget)
        for number in evicted:
            frozen = next(trial for trial in paused if trial.number == number)
            self.search.executor.discard_state(requests[number])
            trial = optuna.trial.Trial(self.search.study, self.search._trial_id(number))
            trial.set_user_attr(PHASE_ATTR, vocab.PHASE_EVICTED)
            trial.set_user_attr(vocab.PAUSE_REASON_ATTR, f"state evicted: the paused runs' states exceeded the "
                                                         f"state budget ({budget / 2**30:.3g} GB); final at its "
                                                         f"best so far")
            self.search._tell(trial, vocab.COMPLETE, TrialState.COMPLETE, value=max(frozen.intermediate_values.values()))
        return evicted

    def _request(self, frozen: FrozenTrial) -> TrialRequest:
        return self.search._request_for(frozen, Path(str(frozen.user_attrs.get(vocab.DIRECTORY_ATTR))))

    def pause_after_crash(self, trial: optuna.Trial, request: TrialRequest, start_epoch: int) -> bool:
        """The run's trainer died with its orchestrator (nothing to adopt): when it left a saved state, the run
        pauses there (``finish_segment``'s rule for a failed segment; the epochs up to the state that it never
        scored are scored when it continues: ``TrialRequest.scored_through``). False when it left none (the
        caller fails and re-queues the trial)."""
        epoch = self.search.executor.saved_epoch(request)
        if epoch is None:
            return False
        outcome = TrialOutcome(failure_cause="its trainer died with its orchestrator", paused_at=epoch)
        self.finish_segment(trial, outcome, start_epoch)
        return True

    def close_paused(self) -> None:
        """The search is over: every run still paused becomes final at its best score so far."""
        for frozen in self.search.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if not is_paused(frozen) or not frozen.intermediate_values or frozen.number in self._elsewhere:
                continue
            trial = optuna.trial.Trial(self.search.study, self.search._trial_id(frozen.number))
            trial.set_user_attr(PHASE_ATTR, vocab.PHASE_STOPPED)
            best = max(frozen.intermediate_values.values())
            self.search._tell(trial, vocab.COMPLETE, TrialState.COMPLETE, value=best)

    def resume(self, number: int) -> str:
        """Continue a paused run from its saved state, until the scheduler pauses it again or it finishes."""
        search = self.search
        trial_id = search._trial_id(number)
        trial = optuna.trial.Trial(search.study, trial_id)
        with heartbeat(search.storage, trial_id):
            claimed = self._claim(trial_id)
            if claimed is None:
                return NOT_RESUMED
            frozen, request = claimed
            paused_at = request.resume_from
            search._stop_reasons.pop(number, None)
            outcome = search._execute(trial, request, adopt=False, already_reported=frozen.intermediate_values)
            assert outcome is not None
            return self.finish_segment(trial, outcome, (paused_at or 0) + 1)

    def _claim(self, trial_id: int) -> tuple[FrozenTrial, TrialRequest] | None:
        """Take a paused run up (see the module's docstring), or None: another worker took it first, or its
        state cannot be read here."""
        search = self.search
        with FileLock(search.settings.output / RESUME_LOCK, holder=search.worker.as_text(), wait=None):
            frozen = search.storage.get_trial(trial_id)
            if not is_paused(frozen):
                return None
            base = search._request_for(frozen, Path(str(frozen.user_attrs.get(vocab.DIRECTORY_ATTR))))
            if search.executor.state_bytes(base) <= 0:
                self._elsewhere.add(frozen.number)
                return None
            trial = optuna.trial.Trial(search.study, trial_id)
            trial.set_user_attr(vocab.WORKER_ATTR, search.worker.as_text())
            trial.set_user_attr(PHASE_ATTR, vocab.PHASE_RESUMED)
            if frozen.user_attrs.get(vocab.CRASH_PAUSED_ATTR):
                trial.set_user_attr(vocab.CRASH_PAUSED_ATTR, False)
            if self.strategy == "first-epoch":
                trial.set_user_attr(PROMOTED_ATTR, True)
        paused_at = frozen.user_attrs.get(PAUSED_AT_ATTR)
        return frozen, dataclasses.replace(base, resume_from=None if paused_at is None else int(paused_at),
                                           scored_through=max(frozen.intermediate_values, default=0))


def record_segment(segments: list[list[Any]], start_epoch: int, last_epoch: int,
                   outcome: TrialOutcome) -> list[list[Any]]:
    """``segments`` with this trained stretch recorded: ``[first epoch, last epoch, GPU seconds, trainer
    start]``. A segment whose trainer start is already recorded (an orchestrator that died after recording
    it and adopted it again) replaces the old entry instead of counting its GPU time twice."""
    entry = [start_epoch, last_epoch, round(outcome.gpu_seconds, 1), outcome.segment_started]
    kept = []
    for segment in segments:
        if outcome.segment_started is not None and len(segment) >= 4 and segment[3] == outcome.segment_started:
            entry[0], entry[1] = min(entry[0], segment[0]), max(entry[1], segment[1])
        else:
            kept.append(segment)
    return [*kept, entry]


def predicted_value(trial: FrozenTrial) -> float:
    """A paused run's value as TPE sees it: the model's prediction, else its best so far."""
    predicted = trial.user_attrs.get(PREDICTED_ATTR)
    if predicted is not None and math.isfinite(float(predicted)):
        return float(predicted)
    return max(trial.intermediate_values.values())
