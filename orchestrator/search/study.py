"""The search loop: ask Optuna, check the safety rules, train through the executor, tell the result.

One :class:`Search` is one process working on a study (the first run, a resumed run or a worker that
joins a shared PostgreSQL study). Every path through a trial ends in exactly one ``study.tell`` and
a rewrite of ``trial_results.json``:

* rejected by a safety rule -> PRUNED before any GPU time, with the reason and the failed rules;
* the pruner asked to stop   -> the trainer is stopped cleanly, PRUNED, its scores kept;
* the trainer failed          -> FAIL with the cause; the search goes on with the next trial;
* finished                    -> COMPLETE, value = the best epoch's score.

Resume: running the same command again continues until the study holds the requested number of
counted trials (complete, pruned by the pruner, failed). A trial left RUNNING by a dead orchestrator
on this machine is re-adopted through the executor (its trainer may still live in tmux); when
nothing survived, it is failed and re-queued with the same parameters. Trials of dead workers on
other machines are found by Optuna's heartbeat and re-queued the same way.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from orchestrator.common.errors import UserInputError
from orchestrator.search import results as res
from orchestrator.search import vocabulary as vocab
from orchestrator.search.constraints import TrainingChoices, check_constraints
from orchestrator.search.early_stop import past_peak
from orchestrator.search.executor import SearchAborted, TrialExecutor, TrialOutcome, TrialRequest
from orchestrator.search.merge import flatten_training_tables, merge_trial_config
from orchestrator.search.optuna_adapter import heartbeat, quiet_optuna_notices
from orchestrator.search.prior import plan_from_study_attr
from orchestrator.search.pruning import make_pruner
from orchestrator.search.recovery import fail_abandoned, recover_orphans
from orchestrator.search.sampling import make_sampler
from orchestrator.search.scheduled import fail_stale_unpaused
from orchestrator.search.settings import SearchSettings, SearchSummary, load_worker_settings
from orchestrator.search.storage import MAX_RETRY, create_study, make_storage, redact_url
from orchestrator.search.study_identity import first_difference, record_or_check_study
from orchestrator.search.vocabulary import (
    ADOPTED_ATTR,
    BEST_EPOCH_ATTR,
    BEST_SCORE_ATTR,
    CHECKPOINT_ATTR,
    DIRECTORY_ATTR,
    EARLY_STOP_REASON_ATTR,
    FAILED_RULES_ATTR,
    FAILURE_CAUSE_ATTR,
    GPU_SECONDS_ATTR,
    GPUS_ATTR,
    LAST_EPOCH_ATTR,
    OUTCOME_ATTR,
    OVERRIDES_ATTR,
    PAST_PEAK,
    PRIOR_ATTR,
    PRUNE_REASON_ATTR,
    REJECTION_REASON_ATTR,
    SEARCH_SPACE_ATTR,
    STOP_REQUESTED_ATTR,
    STOPPED_EARLY_ATTR,
    VALIDATION_LOSS_ATTR,
    WARM_START_ATTR,
    WORKER_ATTR,
)
from orchestrator.search.workspace import (
    WorkerIdentity,
    create_trial_directory,
    read_trial_config,
    trial_directory,
)

log = logging.getLogger(__name__)

# Re-exported: the settings, the summary and the stopping rule are part of the search's public face.
__all__ = ["MAX_CONSECUTIVE_REJECTIONS", "Search", "SearchSettings", "SearchSummary", "first_difference",
           "load_worker_settings", "past_peak"]

MAX_CONSECUTIVE_REJECTIONS = 200  # a space where nothing is safe would otherwise loop for ever


class Search:
    def __init__(self, settings: SearchSettings, executor: TrialExecutor, *,
                 storage: optuna.storages.BaseStorage | None = None) -> None:
        quiet_optuna_notices()
        self.settings = settings
        self.executor = executor
        self.storage = storage or make_storage(settings.storage, heartbeat_interval=settings.heartbeat_interval,
                                               grace_period=settings.grace_period)
        self.worker = WorkerIdentity.current()
        max_epochs = int(settings.space.max_value(
            "max_train_epochs", flatten_training_tables(settings.base_config).get("max_train_epochs", 10)))
        self.study = create_study(
            settings.storage, settings.study_name, storage=self.storage,
            pruner=make_pruner(settings.pruner, max_epochs=max_epochs),
            sampler=optuna.samplers.RandomSampler(),  # replaced below, once the trial count is known
        )
        self._check_study_space()
        existing = len(self.study.get_trials(deepcopy=False))
        # A resumed run must not replay the first run's random start-up suggestions.
        seed = None if settings.seed is None else settings.seed + existing
        self.study.sampler = make_sampler(settings.sampler, seed=seed,
                                          warm_start_trials=len(self.study.user_attrs.get(WARM_START_ATTR, [])))
        # A resume without --prior and a worker use the prior the study was created with.
        prior = settings.prior or plan_from_study_attr(self.study.user_attrs.get(PRIOR_ATTR), settings.space)
        if prior is not None and settings.sampler == "tpe":
            from orchestrator.search.prior_sampler import make_prior_sampler

            self.study.sampler = make_prior_sampler(prior, seed=seed, warm_start_trials=len(
                self.study.user_attrs.get(WARM_START_ATTR, [])))
        if settings.scheduler != "none":  # TPE models a paused run at its predicted final best
            from orchestrator.search._paused_sampler import PausedAsCompleteSampler

            self.study.sampler = PausedAsCompleteSampler(self.study.sampler)
        self._study_id = self.storage.get_study_id_from_name(settings.study_name)
        self._retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
        self.adopted: list[int] = []
        self._stop_reasons: dict[int, str] = {}  # why the search asked a trial's trainer to stop
        from orchestrator.search.scheduled import Schedule

        self.schedule = Schedule(self) if settings.scheduler != "none" else None

    # ----------------------------------------------------------------------------------------- loop
    def run(self, *, on_progress: Any = None) -> SearchSummary:
        self.recover_orphans()
        rejections_in_a_row = 0
        while True:
            fail_stale_unpaused(self.study)  # Optuna's fail_stale_trials, but a paused run has no heartbeat
            self.fail_abandoned()
            action = self.schedule.next_action() if self.schedule is not None else None
            if action is None and len(res.counted_trials(self.study.get_trials(deepcopy=False))) >= \
                    self.settings.trials:
                break
            if action is not None and action.kind == "stop":
                self.schedule.close_paused()  # type: ignore[union-attr]
                break
            try:
                resuming = action.number if action is not None and action.kind == "resume" else None
                outcome = self.resume(resuming) if resuming is not None else self.run_one_trial()
            except optuna.exceptions.UpdateFinishedTrialError as error:
                # Our heartbeats lapsed (a database outage) and another worker failed and re-queued the
                # trial: its retry stands for it, so this result is dropped, not the whole search.
                log.warning("a trial was taken over by another worker while this one trained it (%s); "
                            "its retry counts instead", error)
                outcome = vocab.FAILED
            rejections_in_a_row = rejections_in_a_row + 1 if outcome == vocab.REJECTED else 0
            if rejections_in_a_row >= MAX_CONSECUTIVE_REJECTIONS:
                raise UserInputError(
                    f"the last {rejections_in_a_row} sampled trials all broke safety rules; widen the "
                    "search space or the base config", path=self.settings.space.source)
            if on_progress is not None:
                on_progress(self.study.get_trials(deepcopy=False))
        self.fail_abandoned(wait=True)
        return self.summary()

    def run_one_trial(self) -> str:
        """Ask, check, train, tell one trial; returns its outcome. The trial beats from the moment it is
        RUNNING: a worker that dies at any point after ``ask`` leaves a trial the heartbeat re-queues."""
        trial = self.study.ask()
        with heartbeat(self.storage, self._trial_id(trial.number)):
            return self._run_asked(trial)

    def _run_asked(self, trial: optuna.Trial) -> str:
        settings = self.settings
        self._start_attempt(trial)
        params = settings.space.sample(trial)
        overrides = settings.space.training_overrides(params)
        config = merge_trial_config(settings.base_config, overrides)
        trial.set_user_attr(OVERRIDES_ATTR, overrides)
        flat = {**flatten_training_tables(config), **params}
        if flat.get("max_train_epochs"):
            trial.set_user_attr(LAST_EPOCH_ATTR, int(flat["max_train_epochs"]))  # the catch-up bound's horizon
        if settings.enforce_constraints:
            verdict = check_constraints(TrainingChoices.from_flat_config(flat))
            for name, value in verdict.constraint_values().items():
                trial.set_constraint(name, value)
            if not verdict.accepted:
                trial.set_user_attr(REJECTION_REASON_ATTR, verdict.reason)
                trial.set_user_attr(FAILED_RULES_ATTR, verdict.failed_names)
                return self._tell(trial, vocab.REJECTED, TrialState.PRUNED)
        if self._is_surplus(trial.number):
            trial.set_user_attr(PRUNE_REASON_ATTR, f"the study already has its {settings.trials} trials")
            return self._tell(trial, vocab.SURPLUS, TrialState.FAIL)
        if settings.write_files:
            directory = create_trial_directory(settings.output, trial.number, study_name=settings.study_name,
                                               params=params, config=config)
        else:
            directory = trial_directory(settings.output, trial.number)
        trial.set_user_attr(DIRECTORY_ATTR, str(directory))
        if self.schedule is not None:
            trial.set_user_attr(vocab.PHASE_ATTR, vocab.PHASE_TRAINING)
        request = TrialRequest(trial.number, directory, config, overrides, params, settings.study_name)
        self.write_results()
        outcome = self._execute(trial, request, adopt=False)
        assert outcome is not None
        return self._finish(trial, outcome)

    def _start_attempt(self, trial: optuna.Trial) -> None:
        """Claim the trial and clear what an earlier attempt left: a retry of a failed trial starts
        with a copy of its user attributes, and an inherited ``outcome`` would make the next resume
        fail (not re-adopt) the live retry, and show the old failure on it."""
        trial.set_user_attr(WORKER_ATTR, self.worker.as_text())
        if self.settings.gpus is not None:
            trial.set_user_attr(GPUS_ATTR, self.settings.gpus)
        for key in vocab.ATTEMPT_ATTRS:
            if trial.user_attrs.get(key) is not None:
                trial.set_user_attr(key, None)

    # ------------------------------------------------------------------------------------- resume
    def recover_orphans(self) -> None:
        """Adopt or retry this machine's orphaned trials (``recovery.recover_orphans``)."""
        recover_orphans(self)

    def fail_abandoned(self, *, wait: bool = False) -> None:
        """Fail the trials no worker claimed (``recovery.fail_abandoned``)."""
        fail_abandoned(self, wait=wait)

    def resume(self, number: int) -> str:
        """Continue a paused run from its saved state (scheduled.py)."""
        assert self.schedule is not None
        return self.schedule.resume(number)

    # ------------------------------------------------------------------------------------ helpers
    def _trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self._study_id, number)

    def _request_for(self, frozen: optuna.trial.FrozenTrial, directory: Path) -> TrialRequest:
        if not self.settings.write_files:  # the benchmark keeps no trial folders
            overrides = dict(frozen.user_attrs.get(OVERRIDES_ATTR, {}))
            config = merge_trial_config(self.settings.base_config, overrides)
            return TrialRequest(frozen.number, directory, config, overrides,
                                dict(frozen.params), self.settings.study_name)
        return TrialRequest(frozen.number, directory, read_trial_config(directory),
                            dict(frozen.user_attrs.get(OVERRIDES_ATTR, {})), dict(frozen.params),
                            self.settings.study_name)

    def _execute(self, trial: optuna.Trial, request: TrialRequest, *, adopt: bool,
                 already_reported: Mapping[int, float] | None = None) -> TrialOutcome | None:
        reported = set(already_reported or {})
        scores = dict(already_reported or {})
        prunes = self.settings.pruner != "none"

        validation_losses = {int(e): float(v) for e, v in
                             (trial.user_attrs.get(VALIDATION_LOSS_ATTR) or {}).items()} if adopt else {}

        def report(epoch: int, score: float, validation_loss: float | None = None) -> bool:
            if not math.isfinite(score):
                raise ValueError(f"epoch {epoch} scored {score}; the evaluator produced no usable score")
            if validation_loss is not None and math.isfinite(validation_loss) \
                    and validation_losses.get(epoch) != validation_loss:
                # Before trial.report, so that the pruner asked below already sees this epoch's loss.
                validation_losses[epoch] = float(validation_loss)
                trial.set_user_attr(VALIDATION_LOSS_ATTR,
                                    {str(e): v for e, v in sorted(validation_losses.items())})
            if epoch not in reported:
                trial.report(score, epoch)
                reported.add(epoch)
                scores[epoch] = score
                self.write_results()
            if self.schedule is not None:
                reason = self.schedule.at_rung(trial, scores, 0.0)
                return stop(reason) if reason else False
            if prunes and trial.should_prune():
                return stop("pruned")
            if past_peak(scores, self.settings.patience):
                return stop(PAST_PEAK)
            return False

        def stop(reason: str) -> bool:
            if trial.number not in self._stop_reasons:
                # Stored, so that a resume that adopts this run records the stop the same way.
                trial.set_user_attr(STOP_REQUESTED_ATTR, reason)
                self._stop_reasons[trial.number] = reason
            return True

        try:
            if adopt:
                return self.executor.adopt(request, report)
            return self.executor.run(request, report)
        except SearchAborted as error:
            if request.resume_from is not None:  # a paused run stays paused: a rerun may continue it
                trial.set_user_attr(vocab.PHASE_ATTR, vocab.PHASE_PAUSED)
                raise
            trial.set_user_attr(FAILURE_CAUSE_ATTR, str(error))
            self._tell(trial, vocab.FAILED, TrialState.FAIL)
            raise
        except optuna.exceptions.UpdateFinishedTrialError:
            raise  # another worker owns the trial now (see run)
        except Exception as error:  # a bug or a crash in one trial must not end the whole search
            log.exception("trial %d failed", trial.number)
            return TrialOutcome(failure_cause=f"{type(error).__name__}: {error}")

    def _finish(self, trial: optuna.Trial, outcome: TrialOutcome, start_epoch: int = 1) -> str:
        if self.schedule is not None:
            return self.schedule.finish_segment(trial, outcome, start_epoch)
        attrs = {
            BEST_EPOCH_ATTR: outcome.best_epoch, BEST_SCORE_ATTR: outcome.best_score,
            CHECKPOINT_ATTR: outcome.checkpoint, "gpu_seconds": round(outcome.gpu_seconds, 1),
            "epoch_scores": {str(epoch): score for epoch, score in sorted(outcome.epoch_scores.items())},
            FAILURE_CAUSE_ATTR: outcome.failure_cause, ADOPTED_ATTR: outcome.adopted,
            STOPPED_EARLY_ATTR: outcome.stopped_early,
        }
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if outcome.failure_cause:
            return self._tell(trial, vocab.FAILED, TrialState.FAIL)
        if outcome.stopped_early and self._stop_reasons.get(trial.number) == PAST_PEAK:
            trial.set_user_attr(EARLY_STOP_REASON_ATTR, f"no better score for {self.settings.patience} sample epochs "
                                                     f"after epoch {outcome.best_epoch}: the rest of the run "
                                                     "would only over-fit")
        elif outcome.stopped_early:
            last = max(outcome.epoch_scores, default=0)
            trial.set_user_attr(PRUNE_REASON_ATTR, f"stopped by the {self.settings.pruner} pruner after epoch "
                                                f"{last} (score {outcome.epoch_scores.get(last, float('nan')):.4f})")
            return self._tell(trial, vocab.PRUNED, TrialState.PRUNED)
        if outcome.best_score is None:
            trial.set_user_attr(FAILURE_CAUSE_ATTR, "the run finished without an evaluated epoch")
            return self._tell(trial, vocab.FAILED, TrialState.FAIL)
        return self._tell(trial, vocab.COMPLETE, TrialState.COMPLETE, value=outcome.best_score)

    def _tell(self, trial: optuna.Trial, outcome: str, state: TrialState, value: float | None = None) -> str:
        trial.set_user_attr(OUTCOME_ATTR, outcome)
        if state == TrialState.COMPLETE:
            self.study.tell(trial, value)
        else:
            self.study.tell(trial, state=state)
        self.write_results()
        return outcome

    def _is_surplus(self, number: int) -> bool:
        """Several workers may ask at once near the end: the lowest numbers keep the slots."""
        counted = res.counted_trials(self.study.get_trials(deepcopy=False))
        return sum(1 for trial in counted if trial.number < number) >= self.settings.trials

    def _enqueue_warm_start(self) -> None:
        """Only for a new study: a resumed run or a worker must not train the references again. Enqueued
        before the space is stored, so a first run that dies in between enqueues them on its resume;
        ``skip_if_exists`` keeps that from doubling them."""
        for point in self.settings.warm_start:
            self.study.enqueue_trial(point.params, user_attrs={"warm_start": point.name}, skip_if_exists=True)
        if self.settings.warm_start:
            self.study.set_user_attr(WARM_START_ATTR, [point.name for point in self.settings.warm_start])
        prior = self.settings.prior
        if prior is not None:
            for config in prior.configs:
                self.study.enqueue_trial(config.params, user_attrs={PRIOR_ATTR: prior.config_attrs(config)},
                                         skip_if_exists=True)
            self.study.set_user_attr(PRIOR_ATTR, prior.study_attr())

    def _check_study_space(self) -> None:
        """Store the study's settings when it is new (and enqueue the warm start), else check them."""
        if self.study.user_attrs.get(SEARCH_SPACE_ATTR) is None:
            self._enqueue_warm_start()
        identity = getattr(self.executor, "objective_identity", None)
        record_or_check_study(self.study, self.settings, identity() if identity is not None else None)

    def write_results(self) -> Path | None:
        if not self.settings.write_files:
            return None
        return res.write_results(self.settings.output, self.study.get_trials(deepcopy=False),
                                 study_name=self.settings.study_name, storage=redact_url(self.settings.storage),
                                 target_trials=self.settings.trials)

    def summary(self) -> SearchSummary:
        trials = self.study.get_trials(deepcopy=False)
        path = self.write_results()
        counts: dict[str, int] = {}
        for trial in trials:
            counts[res.outcome_of(trial)] = counts.get(res.outcome_of(trial), 0) + 1
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best = max(complete, key=lambda t: t.value or 0.0, default=None)
        return SearchSummary(
            counted_trials=len(res.counted_trials(trials)), counts=counts,
            best_number=best.number if best else None, best_value=best.value if best else None,
            results_path=path, gpu_seconds=sum(float(t.user_attrs.get(GPU_SECONDS_ATTR) or 0.0) for t in trials),
            adopted=list(self.adopted),
        )
