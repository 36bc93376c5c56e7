"""The real :class:`TrialExecutor`: render the trial's preset, train it in tmux through the runner,
score each sample epoch with the evaluator as soon as it is complete, and stop the trainer when the
pruner says so.

An epoch's samples are complete when the next epoch starts (or the run ends), so that is when the
epoch is scored and reported. A stop keeps everything the trainer wrote (checkpoints, samples, states);
the final evaluation writes ``run/evaluation/{scores,best}.json`` like ``lora-pipeline evaluate``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.config.paths import ProjectPaths
from orchestrator.search.executor import ReportEpoch, SearchAborted, TrialOutcome, TrialRequest

log = logging.getLogger(__name__)

STOP_REASON = "pruned"  # written to the runner's stop file, so run.json says why the trainer stopped


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
    _evaluator: Any = field(default=None, repr=False)

    # ---------------------------------------------------------------------------------- protocol
    def run(self, request: TrialRequest, report: ReportEpoch) -> TrialOutcome:
        from orchestrator.kohya.render import render_run
        from orchestrator.runner import PreflightFailed, start_training

        rendered = render_run(request.directory / "config.toml", overrides={"output_name": _output_name(request)},
                              paths=self.paths, run_dir=request.run_dir)
        try:
            handle = start_training(rendered, paths=self.paths, session_name=_session_name(request),
                                    gpus=self.gpus, allow_cpu=self.allow_cpu, tmux_socket=self.tmux_socket)
        except PreflightFailed as error:  # no GPU, no trainer, no disk: every trial would fail the same way
            raise SearchAborted(f"pre-flight refused trial {request.number}: {error}") from error
        except Exception as error:  # e.g. a leftover tmux session of the same name: this trial fails
            return TrialOutcome(failure_cause=f"not started: {error}")
        return self._follow(request, handle, report, TrialOutcome())

    def adopt(self, request: TrialRequest, report: ReportEpoch) -> TrialOutcome | None:
        from orchestrator.runner import adopt_run, load_run_record
        from orchestrator.runner.files import RunFiles, pid_alive

        if not (request.run_dir / "run.json").is_file():
            return None  # the orchestrator died before the trainer was launched
        handle = adopt_run(request.run_dir)
        if handle is None:  # the run was already followed to its end; only the search's tell was lost
            return self._conclude(request, load_run_record(request.run_dir), report,
                                  TrialOutcome(adopted=True), stopped=False)
        files = RunFiles(request.run_dir)
        trainer = files.read(files.trainer) or {}
        if files.read(files.exit) is None and not pid_alive(trainer.get("pid")) \
                and not pid_alive(trainer.get("supervisor_pid")):
            return None  # the trainer died with its orchestrator (reboot): nothing to adopt, retry
        log.info("trial %d: following the surviving trainer in tmux session %s", request.number,
                 handle.record.tmux_session)
        return self._follow(request, handle, report, TrialOutcome(adopted=True))

    def stop_orphan(self, request: TrialRequest) -> None:
        from orchestrator.runner import stop_run

        if (request.run_dir / "run.json").is_file():
            stop_run(request.run_dir, timeout=self.stop_timeout, reason="abandoned")

    # ----------------------------------------------------------------------------------- helpers
    def _follow(self, request: TrialRequest, handle: Any, report: ReportEpoch,
                outcome: TrialOutcome) -> TrialOutcome:
        from orchestrator.kohya.log_grammar import EpochStarted
        from orchestrator.runner import stop_run

        evaluator = self._get_evaluator()
        scored: set[int] = set()
        stopped = False

        def score_finished_epochs(before_epoch: float, record: Any) -> None:
            nonlocal stopped
            for epoch in _sample_epochs(request.run_dir, record.output_name):
                if stopped or epoch >= before_epoch or epoch in scored:
                    continue
                scored.add(epoch)
                total = evaluator.score_epoch(request.run_dir, epoch).total
                if total is None:
                    continue  # a metric could not be computed; the final evaluation says why
                outcome.epoch_scores[epoch] = float(total)
                last_epoch = int(record.summary.get("epochs") or 0)
                if report(epoch, float(total)) and epoch < last_epoch:
                    stopped = True
                    stop_run(request.run_dir, timeout=self.stop_timeout, reason=STOP_REASON)

        def on_event(event: Any, record: Any) -> None:
            if isinstance(event, EpochStarted):
                score_finished_epochs(event.epoch, record)

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
        outcome.gpu_seconds = _wall_seconds(record.started_at, record.finished_at)
        outcome.stopped_early = stopped
        if record.status != "succeeded" and not stopped:
            failure = record.failure or {}
            outcome.failure_cause = (f"{failure.get('cause', 'unknown')}: {failure.get('message', '')}".strip()
                                     if failure else f"the run ended with status {record.status}")
        if not _sample_epochs(request.run_dir, record.output_name):
            return outcome
        result = self._get_evaluator().evaluate(request.run_dir)
        for epoch, score in sorted(result.epochs.items()):
            if score.total is None:
                continue
            if epoch not in outcome.epoch_scores:  # an adopted run: epochs nobody reported yet
                outcome.epoch_scores[epoch] = float(score.total)
                report(epoch, float(score.total))
        if result.best is not None:
            outcome.best_epoch, outcome.checkpoint = result.best.epoch, result.best.checkpoint
        return outcome

    def _get_evaluator(self) -> Any:
        if self._evaluator is None:
            from orchestrator.evaluate import Evaluator

            self._evaluator = Evaluator(self.references, encoder=self.encoder, config=self.evaluation_config,
                                        device=self.device)
        return self._evaluator

    def close(self) -> None:
        if self._evaluator is not None:
            self._evaluator.close()
            self._evaluator = None


def _output_name(request: TrialRequest) -> str:
    return f"trial_{request.number:04d}"


def _session_name(request: TrialRequest) -> str:
    # tmux refuses "." and ":" in session names.
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{request.study_name}_trial_{request.number:04d}")


def _sample_epochs(run_dir: Path, output_name: str) -> list[int]:
    from orchestrator.kohya.outputs import find_samples

    samples, _ = find_samples(run_dir, output_name)
    return sorted({sample.epoch for sample in samples if sample.epoch is not None})


def _wall_seconds(started_at: str | None, finished_at: str | None) -> float:
    """The time the trainer held the GPU (launch to exit), the cost the search minimises."""
    if not started_at:
        return 0.0
    start = dt.datetime.fromisoformat(started_at)
    end = dt.datetime.fromisoformat(finished_at) if finished_at else dt.datetime.now(start.tzinfo)
    return max(0.0, (end - start).total_seconds())
