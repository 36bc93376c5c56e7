"""The real :class:`TrialExecutor`: render the trial's preset, train it in tmux through the runner,
score each sample epoch with the evaluator as soon as it is complete, and stop the trainer when the
pruner says so.

Every trial saves its training state at each sample epoch (only the newest kept,
``kohya.train_state.pausable_arguments``), so a stop at a sample epoch -- asked by ``report`` or by the
request's ``until_epoch`` -- is a pause: ``paused_at`` names the epoch, and ``run`` with ``resume_from``
continues it through the runner's resume (``train --resume``'s path), with the same learning-rate schedule
and step count, in the same run folder and record. A run that finished needs no state: it is deleted.

An epoch's samples are complete when the next epoch starts (or the run ends), so that is when the
epoch is scored and reported, with the newest validation loss logged at or before it (sd-scripts
validates before it samples, so a validated sample epoch reports its own loss; None when the run has no
validation split). A stop keeps everything the trainer wrote (checkpoints, samples, states);
the final evaluation writes ``run/evaluation/{scores,best}.json`` like ``lora-pipeline evaluate``.

The evaluator's model must not starve the trainer: when it was loaded here on a CUDA device it is
freed after every trial (and the CUDA cache emptied), so the next trial's VRAM pre-flight and the
trainer see the card as the search found it; ``device="cpu"`` (or another GPU) keeps it loaded.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.config.paths import ProjectPaths
from orchestrator.search.executor import ReportEpoch, SearchAborted, TrialOutcome, TrialRequest

log = logging.getLogger(__name__)

STOP_REASON = "pruned"  # written to the runner's stop file, so run.json says why the trainer stopped
PAUSE_REASON = "paused"  # the stop at the request's until_epoch


@dataclass
class KohyaExecutor:
    paths: ProjectPaths
    references: Path
    device: str = "cuda"  # where the evaluator's CLIP model runs
    gpus: str | None = None  # passed to the runner (CUDA_VISIBLE_DEVICES-style list)
    allow_cpu: bool = False  # pre-flight: accept a machine without a GPU (tests, demos)
    tmux_socket: str | None = None
    encoder: Any = None  # a loaded orchestrator.vision ClipEncoder; default: the evaluation config's model
    evaluation_config: Any = None  # an orchestrator.evaluate.EvaluationConfig; default: configs/evaluation
    poll_seconds: float = 2.0
    stop_timeout: float = 120.0
    state_budget_bytes: int = 0  # disk kept free for the search's paused states (runner/state_budget.py)
    _evaluator: Any = field(default=None, repr=False)

    # ---------------------------------------------------------------------------------- protocol
    def run(self, request: TrialRequest, report: ReportEpoch) -> TrialOutcome:
        from orchestrator.kohya.arguments import flatten_training_tables
        from orchestrator.kohya.render import render_run
        from orchestrator.kohya.train_state import RESUME_ARGUMENTS, newest_state, pausable_arguments
        from orchestrator.runner import PreflightFailed, start_training

        resuming = request.resume_from is not None
        if resuming:
            state = newest_state(request.run_dir, _output_name(request))
            if state is None or state.epoch != request.resume_from:
                found = "no saved state" if state is None else f"the saved state is of epoch {state.epoch}"
                return TrialOutcome(failure_cause=f"cannot resume from epoch {request.resume_from}: {found} "
                                                  f"in {request.run_dir}")
        overrides = {"output_name": _output_name(request),
                     **pausable_arguments(flatten_training_tables(request.config)),
                     **(RESUME_ARGUMENTS if resuming else {})}
        rendered = render_run(request.directory / "config.toml", overrides=overrides, paths=self.paths,
                              run_dir=request.run_dir)
        self._release_evaluator()  # the pre-flight measures the card without our scoring model on it
        try:
            handle = start_training(rendered, paths=self.paths, session_name=session_name_for(request),
                                    gpus=self.gpus, allow_cpu=self.allow_cpu, tmux_socket=self.tmux_socket,
                                    resume=resuming, state_reserve_bytes=self._state_reserve(request))
        except PreflightFailed as error:  # no GPU, no trainer, no disk: every trial would fail the same way
            raise SearchAborted(f"pre-flight refused trial {request.number}: {error}") from error
        except Exception as error:
            # Not the trial's parameters (those were rendered and checked): tmux, the lock, the disk.
            # The next trial would hit it too, so the search stops with the cause instead of
            # failing trial after trial and exiting 0.
            raise SearchAborted(f"trial {request.number} could not be started: {error}") from error
        try:
            return self._follow(request, handle, report, TrialOutcome())
        finally:
            self._release_evaluator()

    def adopt(self, request: TrialRequest, report: ReportEpoch) -> TrialOutcome | None:
        if not (request.run_dir / "run.json").is_file():
            return None  # the orchestrator died before the trainer was launched
        try:
            return self._adopt(request, report)
        finally:
            self._release_evaluator()

    def _adopt(self, request: TrialRequest, report: ReportEpoch) -> TrialOutcome | None:
        from orchestrator.runner import adopt_run, load_run_record
        from orchestrator.runner.files import RunFiles
        from orchestrator.runner.handle import close_session

        handle = adopt_run(request.run_dir)
        if handle is None:  # the run was already followed to its end; only the search's tell was lost
            record = load_run_record(request.run_dir)
            close_session(record)  # the orchestrator may have died between the record and the close
            return self._conclude(request, record, report, TrialOutcome(adopted=True), stopped=False)
        files = RunFiles(request.run_dir)
        if files.read(files.exit) is None and not files.trainer_alive():
            return None  # the trainer died with its orchestrator (reboot): nothing to adopt, retry
        log.info("trial %d: following the surviving trainer in tmux session %s", request.number,
                 handle.record.tmux_session)
        return self._follow(request, handle, report, TrialOutcome(adopted=True))

    def stop_orphan(self, request: TrialRequest) -> None:
        from orchestrator.runner import stop_run

        if (request.run_dir / "run.json").is_file():
            stop_run(request.run_dir, timeout=self.stop_timeout, reason="abandoned")

    def state_bytes(self, request: TrialRequest) -> int:
        from orchestrator.runner.state_budget import run_state_bytes

        return run_state_bytes(request.run_dir, _output_name(request))

    def saved_epoch(self, request: TrialRequest) -> int | None:
        from orchestrator.kohya.train_state import newest_state

        state = newest_state(request.run_dir, _output_name(request))
        return None if state is None else state.epoch

    def discard_state(self, request: TrialRequest) -> None:
        from orchestrator.kohya.train_state import remove_states

        removed = remove_states(request.run_dir, _output_name(request))
        if removed:
            log.info("trial %d: training state deleted (%s); the run can no longer continue", request.number,
                     ", ".join(path.name for path in removed))

    # ----------------------------------------------------------------------------------- helpers
    def _state_reserve(self, request: TrialRequest) -> int:
        """The state budget the search's other paused trials (sibling folders) have not used yet."""
        from orchestrator.runner.state_budget import reserve_bytes, run_state_bytes

        if not self.state_budget_bytes:
            return 0
        others = [folder / "run" for folder in Path(request.directory).parent.iterdir()
                  if folder.is_dir() and folder != Path(request.directory)]
        return reserve_bytes(self.state_budget_bytes, (run_state_bytes(run_dir) for run_dir in others))

    def _follow(self, request: TrialRequest, handle: Any, report: ReportEpoch,
                outcome: TrialOutcome) -> TrialOutcome:
        from orchestrator.kohya.log_grammar import EpochStarted
        from orchestrator.runner import stop_run

        handle.stop_timeout = self.stop_timeout
        evaluator = self._get_evaluator()
        scored: set[int] = set()
        stopped = False
        earlier = request.earlier_epochs

        def score_finished_epochs(before_epoch: float, record: Any) -> None:
            nonlocal stopped
            for epoch in _sample_epochs(request.run_dir, record.output_name):
                if stopped or epoch >= before_epoch or epoch in scored or epoch <= earlier:
                    continue
                scored.add(epoch)
                total = evaluator.score_epoch(request.run_dir, epoch).total
                if total is None:
                    continue  # a metric could not be computed; the final evaluation says why
                outcome.epoch_scores[epoch] = float(total)
                last_epoch = int(record.summary.get("epochs") or 0)
                if report(epoch, float(total), validation_loss=_validation_loss(record, epoch)) \
                        and epoch < last_epoch:
                    stopped = True
                    # Not a blocking stop here: this runs inside follow's callback, and follow must go
                    # on watching (NaN, stalls, the exit) while the trainer winds down.
                    handle.request_stop(STOP_REASON)

        def on_event(event: Any, record: Any) -> None:
            nonlocal stopped
            if isinstance(event, EpochStarted):
                finished = event.epoch - 1  # its state is saved: sd-scripts saves before it samples
                pause = (not stopped and request.until_epoch is not None and finished >= request.until_epoch
                         and finished > earlier)
                if pause:  # asked before scoring, so that the trainer winds down while we score
                    handle.request_stop(PAUSE_REASON)
                score_finished_epochs(event.epoch, record)
                stopped = stopped or pause

        try:
            record = handle.follow(on_event, poll_seconds=self.poll_seconds)
        except Exception:
            # Scoring or following broke (the trial will be failed): do not leave the GPU busy behind us.
            # Ctrl-C is not caught: the trainer keeps running and the next `search` re-adopts it.
            stop_run(request.run_dir, timeout=self.stop_timeout, reason="search_error")
            raise
        if not stopped and record.status == "succeeded":
            score_finished_epochs(float("inf"), record)
        return self._conclude(request, record, report, outcome, stopped=stopped)

    def _conclude(self, request: TrialRequest, record: Any, report: ReportEpoch, outcome: TrialOutcome, *,
                  stopped: bool) -> TrialOutcome:
        """The final evaluation over every sample epoch (writes evaluation/*.json) and the outcome."""
        from orchestrator.kohya.train_state import newest_state, remove_states

        outcome.gpu_seconds = _wall_seconds(record.started_at, record.finished_at)
        outcome.segment_started = record.started_at
        # A stop the search asked for before it died (an adopted run) is the same stop as one seen live;
        # a run that failed while it was being stopped has failed (the runner says which).
        paused = record.stop_reason == PAUSE_REASON and record.status in ("stopped", "succeeded")
        requested = (stopped and not paused) or record.stop_reason == STOP_REASON
        outcome.stopped_early = requested and record.status in ("stopped", "succeeded")
        if record.status != "succeeded" and not (outcome.stopped_early or paused):
            failure = record.failure or {}
            outcome.failure_cause = (f"{failure.get('cause', 'unknown')}: {failure.get('message', '')}".strip()
                                     if failure else f"the run ended with status {record.status}")
        if record.status == "succeeded":
            remove_states(request.run_dir, record.output_name)  # a finished run never continues
        elif record.status == "stopped" and (outcome.stopped_early or paused):
            state = newest_state(request.run_dir, record.output_name)
            outcome.paused_at = state.epoch if state is not None else None
        if _sample_epochs(request.run_dir, record.output_name):
            result = self._get_evaluator().evaluate(request.run_dir)
            for epoch, score in sorted(result.epochs.items()):
                if score.total is None or epoch <= request.earlier_epochs:
                    continue  # an earlier segment's epoch: scored and reported then
                if epoch not in outcome.epoch_scores:  # an adopted run: epochs nobody reported yet
                    outcome.epoch_scores[epoch] = float(score.total)
                    report(epoch, float(score.total), validation_loss=_validation_loss(record, epoch))
            if result.best is not None:
                outcome.best_epoch, outcome.checkpoint = result.best.epoch, result.best.checkpoint
        if outcome.failure_cause:
            # A failed segment may leave a saved state: the run could continue from there (the search decides).
            state = newest_state(request.run_dir, record.output_name)
            outcome.paused_at = state.epoch if state is not None else None
        return outcome

    def _get_evaluator(self) -> Any:
        if self._evaluator is None:
            from orchestrator.evaluate import Evaluator

            self._evaluator = Evaluator(self.references, encoder=self.encoder, config=self.evaluation_config,
                                        device=self.device)
        return self._evaluator

    def objective_identity(self) -> dict[str, Any]:
        """What makes one trial's score comparable with another's: the evaluation settings (weights,
        rules, CLIP model and weights, identity backbone) and, for an injected encoder, its identity.
        ``clip.batch_size`` changes speed, not scores, so it is left out."""
        from orchestrator.evaluate import load_evaluation_config

        config = self.evaluation_config or load_evaluation_config()
        settings = copy.deepcopy(dict(config.raw))
        settings.get("clip", {}).pop("batch_size", None)
        identity: dict[str, Any] = {"evaluation": settings}
        if self.encoder is not None:
            identity["encoder"] = self.encoder.identity
        return identity

    def _release_evaluator(self) -> None:
        """Free a scoring model this executor loaded on a GPU (an injected encoder is the caller's)."""
        if self._evaluator is None or self.encoder is not None or not str(self.device).startswith("cuda"):
            return
        self.close()
        import gc

        gc.collect()
        try:
            import torch

            torch.cuda.empty_cache()
        except Exception:  # noqa: BLE001 - no CUDA runtime: nothing cached
            pass

    def close(self) -> None:
        if self._evaluator is not None:
            self._evaluator.close()
            self._evaluator = None


def _output_name(request: TrialRequest) -> str:
    return f"trial_{request.number:04d}"


def session_name_for(request: TrialRequest) -> str:
    """``{study}_trial_{n:04d}_{hash}``: the hash of the trial's folder keeps two studies of the same
    name (another ``--out``, a deleted folder) from ever asking for the same session."""
    digest = hashlib.sha1(str(Path(request.directory).resolve()).encode()).hexdigest()[:6]
    # tmux refuses "." and ":" in session names.
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{request.study_name}_trial_{request.number:04d}_{digest}")


def _validation_loss(record: Any, epoch: int) -> float | None:
    from orchestrator.kohya.validation import latest_validation_loss

    return latest_validation_loss(getattr(record, "validation_losses", None) or [], epoch)


def _sample_epochs(run_dir: Path, output_name: str) -> list[int]:
    from orchestrator.kohya.outputs import find_samples

    samples, _ = find_samples(run_dir, output_name)
    # The base model's samples (sample_at_first) are evaluation's floor, not an epoch of the trial.
    return sorted({sample.epoch for sample in samples if sample.epoch is not None and not sample.before_training})


def _wall_seconds(started_at: str | None, finished_at: str | None) -> float:
    """The time the trainer held the GPU (launch to exit), the cost the search minimises."""
    if not started_at:
        return 0.0
    start = dt.datetime.fromisoformat(started_at)
    end = dt.datetime.fromisoformat(finished_at) if finished_at else dt.datetime.now(start.tzinfo)
    return max(0.0, (end - start).total_seconds())
