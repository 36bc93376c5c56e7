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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from orchestrator.common.errors import UserInputError
from orchestrator.search import results as res
from orchestrator.search.constraints import TrainingChoices, check_constraints
from orchestrator.search.executor import SearchAborted, TrialExecutor, TrialOutcome, TrialRequest
from orchestrator.search.merge import flatten_training_tables, merge_trial_config
from orchestrator.search.optuna_setup import (
    DEFAULT_PRUNER,
    MAX_RETRY,
    PrunerKind,
    SamplerKind,
    default_storage_url,
    heartbeat,
    make_pruner,
    make_sampler,
    make_storage,
    quiet_optuna_notices,
    redact_url,
)
from orchestrator.search.pruning import LAST_EPOCH_ATTR
from orchestrator.search.space import SearchSpace
from orchestrator.search.warm_start import WarmStartPoint
from orchestrator.search.workspace import (
    WorkerIdentity,
    create_trial_directory,
    read_trial_config,
    trial_directory,
)

log = logging.getLogger(__name__)

DEFAULT_STUDY_NAME = "lora_hyperparameter_search"  # also the CLI's default (orchestrator/search/cli.py)
MAX_CONSECUTIVE_REJECTIONS = 200  # a space where nothing is safe would otherwise loop for ever


@dataclass(frozen=True)
class SearchSettings:
    space: SearchSpace
    base_config: Mapping[str, Any]  # the base preset's tables, never mutated
    output: Path
    trials: int = 20
    study_name: str = DEFAULT_STUDY_NAME
    storage_url: str | None = None  # None = sqlite:///OUTPUT/optuna_study.db
    sampler: SamplerKind = "tpe"
    pruner: PrunerKind = DEFAULT_PRUNER
    seed: int | None = None
    enforce_constraints: bool = True
    # Stop a run whose score has not improved for this many sample epochs (0 = never): its best
    # checkpoint is already on disk and later epochs only over-fit. The trial completes normally.
    patience: int = 2
    write_files: bool = True  # False: no trial folders, no results file (benchmark only)
    heartbeat_interval: int = 60
    grace_period: int = 600
    references: Path | None = None
    # Known-good configs trained first (warm_start.py); enqueued once, when this study is created.
    warm_start: tuple[WarmStartPoint, ...] = ()

    @property
    def storage(self) -> str:
        return self.storage_url or default_storage_url(self.output)


@dataclass
class SearchSummary:
    counted_trials: int
    counts: dict[str, int]
    best_number: int | None
    best_value: float | None
    results_path: Path | None
    gpu_seconds: float = 0.0
    adopted: list[int] = field(default_factory=list)


def load_worker_settings(storage_url: str, study_name: str, output: Path, **changes: Any) -> SearchSettings:
    """Settings for ``search worker``: the space, base config, references and total come from the study,
    so a worker on another machine needs only the storage URL (and the same dataset paths)."""
    from orchestrator.search.space import parse_search_space

    quiet_optuna_notices()
    try:
        summaries = optuna.study.get_all_study_summaries(storage_url, include_best_trial=False)
    except Exception as error:  # SQLAlchemy errors carry the URL; never print the password
        raise UserInputError(f"cannot open storage {redact_url(storage_url)}: {type(error).__name__}",
                             key="storage") from None
    summary = next((s for s in summaries if s.study_name == study_name), None)
    if summary is None or "search_space" not in summary.user_attrs:
        known = ", ".join(s.study_name for s in summaries) or "none"
        raise UserInputError(f"no search study named {study_name!r} in {redact_url(storage_url)} (studies: "
                             f"{known}); start it with `lora-pipeline search` first", key="study-name")
    attrs = summary.user_attrs
    references = attrs.get("references")
    values: dict[str, Any] = {
        "space": parse_search_space(attrs["search_space"]), "base_config": attrs["base_config"],
        "output": output, "trials": int(attrs["target_trials"]), "study_name": study_name,
        "storage_url": storage_url, "references": Path(references) if references else None,
        "sampler": attrs.get("sampler", "tpe"), "pruner": attrs.get("pruner", DEFAULT_PRUNER),
        "patience": int(attrs.get("patience", 2)),
        "seed": None,  # each worker draws its own start-up trials; a shared seed would repeat them
    }
    values.update(changes)
    return SearchSettings(**values)


def past_peak(scores: Mapping[int, float], patience: int) -> bool:
    """True when none of the last ``patience`` sample epochs beat the best one before them."""
    if patience <= 0 or len(scores) <= patience:
        return False
    ordered = [scores[epoch] for epoch in sorted(scores)]
    return max(ordered[-patience:]) <= max(ordered[:-patience])


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
        self.study = optuna.create_study(
            storage=self.storage, study_name=settings.study_name, direction="maximize",
            load_if_exists=True, pruner=make_pruner(settings.pruner, max_epochs=max_epochs),
            sampler=optuna.samplers.RandomSampler(),  # replaced below, once the trial count is known
        )
        self._check_study_space()
        existing = len(self.study.get_trials(deepcopy=False))
        # A resumed run must not replay the first run's random start-up suggestions.
        seed = None if settings.seed is None else settings.seed + existing
        self.study.sampler = make_sampler(settings.sampler, seed=seed,
                                          warm_start_trials=len(self.study.user_attrs.get("warm_start", [])))
        self._study_id = self.storage.get_study_id_from_name(settings.study_name)
        self._retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
        self.adopted: list[int] = []
        self._stop_reasons: dict[int, str] = {}  # why the search asked a trial's trainer to stop

    # ----------------------------------------------------------------------------------------- loop
    def run(self, *, on_progress: Any = None) -> SearchSummary:
        self.recover_orphans()
        rejections_in_a_row = 0
        while True:
            optuna.storages.fail_stale_trials(self.study)
            if len(res.counted_trials(self.study.get_trials(deepcopy=False))) >= self.settings.trials:
                break
            outcome = self.run_one_trial()
            rejections_in_a_row = rejections_in_a_row + 1 if outcome == res.REJECTED else 0
            if rejections_in_a_row >= MAX_CONSECUTIVE_REJECTIONS:
                raise UserInputError(
                    f"the last {rejections_in_a_row} sampled trials all broke safety rules; widen the "
                    "search space or the base config", path=self.settings.space.source)
            if on_progress is not None:
                on_progress(self.study.get_trials(deepcopy=False))
        return self.summary()

    def run_one_trial(self) -> str:
        """Ask, check, train, tell one trial; returns its outcome."""
        settings = self.settings
        trial = self.study.ask()
        trial.set_user_attr("worker", self.worker.as_text())
        params = settings.space.sample(trial)
        overrides = settings.space.training_overrides(params)
        config = merge_trial_config(settings.base_config, overrides)
        trial.set_user_attr("overrides", overrides)
        flat = {**flatten_training_tables(config), **params}
        if flat.get("max_train_epochs"):
            trial.set_user_attr(LAST_EPOCH_ATTR, int(flat["max_train_epochs"]))  # the catch-up bound's horizon
        if settings.enforce_constraints:
            verdict = check_constraints(TrainingChoices.from_flat_config(flat))
            for name, value in verdict.constraint_values().items():
                trial.set_constraint(name, value)
            if not verdict.accepted:
                trial.set_user_attr("rejection_reason", verdict.reason)
                trial.set_user_attr("failed_rules", verdict.failed_names)
                return self._tell(trial, res.REJECTED, TrialState.PRUNED)
        if self._is_surplus(trial.number):
            trial.set_user_attr("prune_reason", f"the study already has its {settings.trials} trials")
            return self._tell(trial, res.SURPLUS, TrialState.FAIL)
        if settings.write_files:
            directory = create_trial_directory(settings.output, trial.number, study_name=settings.study_name,
                                               params=params, config=config)
        else:
            directory = trial_directory(settings.output, trial.number)
        trial.set_user_attr("directory", str(directory))
        request = TrialRequest(trial.number, directory, config, overrides, params, settings.study_name)
        self.write_results()
        outcome = self._execute(trial, request, adopt=False)
        assert outcome is not None
        return self._finish(trial, outcome)

    # ------------------------------------------------------------------------------------- resume
    def recover_orphans(self) -> None:
        """Adopt or retry the RUNNING trials whose orchestrator on this machine has died, and stop the
        trainers of trials that the heartbeat already failed and re-queued (they would train twice)."""
        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            owner = WorkerIdentity.parse(str(frozen.user_attrs.get("worker", "")))
            directory = frozen.user_attrs.get("directory")
            if ("outcome" not in frozen.user_attrs and directory and Path(directory).is_dir()
                    and owner is not None and owner.is_dead_local_process()):
                self.executor.stop_orphan(self._request_for(frozen, Path(directory)))
        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            owner = WorkerIdentity.parse(str(frozen.user_attrs.get("worker", "")))
            if owner is None or not owner.is_dead_local_process():
                continue  # another live worker's, or not ours to judge: the heartbeat decides
            trial_id = self.storage.get_trial_id_from_study_id_trial_number(self._study_id, frozen.number)
            trial = optuna.trial.Trial(self.study, trial_id)
            trial.set_user_attr("worker", self.worker.as_text())
            directory = frozen.user_attrs.get("directory")
            if directory and Path(directory).is_dir() and "outcome" not in frozen.user_attrs:
                request = self._request_for(frozen, Path(directory))
                outcome = self._execute(trial, request, adopt=True, already_reported=frozen.intermediate_values)
                if outcome is not None:
                    log.info("trial %d: re-adopted the trainer of a dead orchestrator", frozen.number)
                    self.adopted.append(frozen.number)
                    self._finish(trial, outcome)
                    continue
            trial.set_user_attr("failure_cause", f"the orchestrator (pid {owner.pid}) died and no trainer "
                                                 "survived; re-queued with the same parameters")
            self._tell(trial, res.FAILED, TrialState.FAIL)
            self._retry(self.study, self.storage.get_trial(trial_id))

    # ------------------------------------------------------------------------------------ helpers
    def _request_for(self, frozen: optuna.trial.FrozenTrial, directory: Path) -> TrialRequest:
        return TrialRequest(frozen.number, directory, read_trial_config(directory),
                            dict(frozen.user_attrs.get("overrides", {})), dict(frozen.params),
                            self.settings.study_name)

    def _execute(self, trial: optuna.Trial, request: TrialRequest, *, adopt: bool,
                 already_reported: Mapping[int, float] | None = None) -> TrialOutcome | None:
        reported = set(already_reported or {})
        scores = dict(already_reported or {})
        prunes = self.settings.pruner != "none"

        def report(epoch: int, score: float) -> bool:
            if not math.isfinite(score):
                raise ValueError(f"epoch {epoch} scored {score}; the evaluator produced no usable score")
            if epoch not in reported:
                trial.report(score, epoch)
                reported.add(epoch)
                scores[epoch] = score
                self.write_results()
            if prunes and trial.should_prune():
                self._stop_reasons[trial.number] = "pruned"
                return True
            if past_peak(scores, self.settings.patience):
                self._stop_reasons[trial.number] = "past_peak"
                return True
            return False

        trial_id = self.storage.get_trial_id_from_study_id_trial_number(self._study_id, trial.number)
        with heartbeat(self.storage, trial_id):
            try:
                if adopt:
                    return self.executor.adopt(request, report)
                return self.executor.run(request, report)
            except SearchAborted as error:
                trial.set_user_attr("failure_cause", str(error))
                self._tell(trial, res.FAILED, TrialState.FAIL)
                raise
            except Exception as error:  # a bug or a crash in one trial must not end the whole search
                log.exception("trial %d failed", trial.number)
                return TrialOutcome(failure_cause=f"{type(error).__name__}: {error}")

    def _finish(self, trial: optuna.Trial, outcome: TrialOutcome) -> str:
        attrs = {
            "best_epoch": outcome.best_epoch, "best_score": outcome.best_score,
            "checkpoint": outcome.checkpoint, "gpu_seconds": round(outcome.gpu_seconds, 1),
            "epoch_scores": {str(epoch): score for epoch, score in sorted(outcome.epoch_scores.items())},
            "failure_cause": outcome.failure_cause, "adopted": outcome.adopted,
            "stopped_early": outcome.stopped_early,
        }
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if outcome.failure_cause:
            return self._tell(trial, res.FAILED, TrialState.FAIL)
        if outcome.stopped_early and self._stop_reasons.get(trial.number) == "past_peak":
            trial.set_user_attr("early_stop_reason", f"no better score for {self.settings.patience} sample epochs "
                                                     f"after epoch {outcome.best_epoch}: the rest of the run "
                                                     "would only over-fit")
        elif outcome.stopped_early:
            last = max(outcome.epoch_scores, default=0)
            trial.set_user_attr("prune_reason", f"stopped by the {self.settings.pruner} pruner after epoch "
                                                f"{last} (score {outcome.epoch_scores.get(last, float('nan')):.4f})")
            return self._tell(trial, res.PRUNED, TrialState.PRUNED)
        if outcome.best_score is None:
            trial.set_user_attr("failure_cause", "the run finished without an evaluated epoch")
            return self._tell(trial, res.FAILED, TrialState.FAIL)
        return self._tell(trial, res.COMPLETE, TrialState.COMPLETE, value=outcome.best_score)

    def _tell(self, trial: optuna.Trial, outcome: str, state: TrialState, value: float | None = None) -> str:
        trial.set_user_attr("outcome", outcome)
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
            self.study.set_user_attr("warm_start", [point.name for point in self.settings.warm_start])

    def _check_study_space(self) -> None:
        """Store the study's settings when it is new (and enqueue the warm start), else check them."""
        stored = self.study.user_attrs.get("search_space")
        current = self.settings.space.to_data()
        if stored is None:
            self._enqueue_warm_start()
            self.study.set_user_attr("search_space", current)
            self.study.set_user_attr("base_config", dict(self.settings.base_config))
            if self.settings.references is not None:
                self.study.set_user_attr("references", str(self.settings.references))
        elif stored != current:
            raise UserInputError(
                f"study {self.settings.study_name!r} was created with a different search space; "
                "resume with the same space file or choose a new --study-name", path=self.settings.space.source)
        self.study.set_user_attr("target_trials", self.settings.trials)
        self.study.set_user_attr("sampler", self.settings.sampler)
        self.study.set_user_attr("pruner", self.settings.pruner)
        self.study.set_user_attr("patience", self.settings.patience)

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
            results_path=path, gpu_seconds=sum(float(t.user_attrs.get("gpu_seconds") or 0.0) for t in trials),
            adopted=list(self.adopted),
        )
