"""A stand-in for training + evaluation: a synthetic response surface and a GPU-time cost model.

Used by the tests and ``bench/search_efficiency.py`` at the same seam (:class:`TrialExecutor`) where
``KohyaExecutor`` trains for real, and by ``lora-pipeline search --executor simulated`` to try the
search machinery without a GPU. The executor speaks to its surface only through the
:class:`~orchestrator.search.surface.ResponseSurface` protocol (``surfaces.py`` holds our own families;
the default is the quadratic one); it scores the epochs sd-scripts samples
(:func:`orchestrator.kohya.schedule.sample_epochs`) and reports each one's validation loss with it.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from orchestrator.common.atomic import atomic_write_json
from orchestrator.search.executor import ReportEpoch, TrialOutcome, TrialRequest, best_epoch_of
from orchestrator.search.merge import flatten_training_tables
from orchestrator.search.surface import ResponseSurface
from orchestrator.search.surfaces import QuadraticSurface, trial_sample_epochs

PROGRESS_FILE = "simulated_run.json"
RESUME_SECONDS = 120.0  # a resume loads the model and the saved state before its first step
STATE_BYTES = 300 * 2**20  # a LoRA's optimizer state and weights, roughly
SIMULATED_START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)  # the simulated GPU's clock starts here


@dataclass
class SimulatedExecutor:
    """A :class:`TrialExecutor` that trains nothing. ``wall_seconds_per_epoch`` makes it take real time
    (for kill tests); ``trainer_survives`` lets :meth:`adopt` continue a run whose orchestrator died, as
    a trainer living in its own tmux session would; ``crash_trials`` fail at ``crash_epoch``."""

    surface: ResponseSurface = field(default_factory=QuadraticSurface)
    wall_seconds_per_epoch: float = 0.0
    trainer_survives: bool = False
    crash_trials: Collection[int] = ()
    crash_epoch: int = 3
    record_progress: bool = True  # the benchmark runs thousands of trials without folders
    stopped_orphans: list[int] = field(default_factory=list)
    resume_seconds: float = RESUME_SECONDS  # GPU-seconds a resume costs before its first step (start-up)
    # Every epoch each run trained, in order (a resume must never train one twice), and its saved state.
    trained_epochs: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    saved_states: dict[tuple[str, int], int] = field(default_factory=dict)
    clock_seconds: float = 0.0  # GPU-seconds this simulated GPU has trained (its clock)

    def run(self, request: TrialRequest, report: ReportEpoch) -> TrialOutcome:
        if request.resume_from is None:
            return self._train(request, report, start_epoch=1, outcome=TrialOutcome(), losses={})
        saved = self.saved_epoch(request)
        if saved != request.resume_from:
            return TrialOutcome(failure_cause=f"no training state saved at epoch {request.resume_from} "
                                              f"(the newest is {saved})")
        outcome = TrialOutcome(gpu_seconds=self.resume_seconds)
        flat = {**flatten_training_tables(request.config), **request.params}
        for epoch in sorted(trial_sample_epochs(flat)):  # trained by a segment that died before scoring them
            if request.earlier_epochs < epoch <= request.resume_from:
                outcome.epoch_scores[epoch] = self.surface.observe(flat, epoch)
                report(epoch, outcome.epoch_scores[epoch], validation_loss=self.surface.validation_loss(flat, epoch))
        return self._train(request, report, start_epoch=request.resume_from + 1, outcome=outcome, losses={})

    def state_bytes(self, request: TrialRequest) -> int:
        """A state this executor saved, or (``record_progress``) one another process saved in the trial's folder."""
        return STATE_BYTES if self.saved_epoch(request) is not None else 0

    def discard_state(self, request: TrialRequest) -> None:
        self.saved_states.pop(_key(request), None)

    def saved_epoch(self, request: TrialRequest) -> int | None:
        saved = self.saved_states.get(_key(request))
        if saved is None and self.record_progress and (request.directory / PROGRESS_FILE).is_file():
            import json  # a new process: the run's own folder says

            saved = json.loads((request.directory / PROGRESS_FILE).read_text()).get("state_epoch")
        return saved

    def adopt(self, request: TrialRequest, report: ReportEpoch) -> TrialOutcome | None:
        progress_path = request.directory / PROGRESS_FILE
        if not self.trainer_survives or not progress_path.is_file():
            return None
        import json

        progress = json.loads(progress_path.read_text())
        outcome = TrialOutcome(
            epoch_scores={int(epoch): score for epoch, score in progress["scores"].items()},
            gpu_seconds=float(progress["gpu_seconds"]),
            adopted=True,
        )
        losses = {int(epoch): loss for epoch, loss in progress.get("validation_losses", {}).items()}
        for epoch, score in sorted(outcome.epoch_scores.items()):
            if report(epoch, score, validation_loss=losses.get(epoch)):
                outcome.stopped_early = True
                return self._finish(request, outcome)
        if progress["finished"]:
            return self._finish(request, outcome)
        return self._train(request, report, start_epoch=int(progress["epochs_done"]) + 1, outcome=outcome,
                           losses=losses)

    def stop_orphan(self, request: TrialRequest) -> None:
        self.stopped_orphans.append(request.number)

    def objective_identity(self) -> dict[str, Any]:
        """The surface stands for the evaluator: another seed or noise is another objective."""
        kind = type(self.surface)
        return {"executor": "simulated", "surface": f"{kind.__module__}:{kind.__qualname__}",
                "surface_seed": getattr(self.surface, "seed", None), "noise": getattr(self.surface, "noise", None)}

    def _train(self, request: TrialRequest, report: ReportEpoch, *, start_epoch: int,
               outcome: TrialOutcome, losses: dict[int, float]) -> TrialOutcome:
        flat = {**flatten_training_tables(request.config), **request.params}
        # Segments are named by their start on the simulated GPU's clock (its GPU-seconds so far), as a real
        # one is by its trainer's start: a scheduled search records each once and can draw them over time.
        outcome.segment_started = (SIMULATED_START + dt.timedelta(seconds=self.clock_seconds)).isoformat()
        evaluated = set(trial_sample_epochs(flat))
        last_epoch = int(flat.get("max_train_epochs") or 10)
        for epoch in range(start_epoch, last_epoch + 1):
            if self.wall_seconds_per_epoch:
                time.sleep(self.wall_seconds_per_epoch)
            self.trained_epochs.setdefault(_key(request), []).append(epoch)
            outcome.gpu_seconds += self.surface.epoch_cost(flat)
            if request.number in self.crash_trials and epoch == self.crash_epoch:
                outcome.failure_cause = f"simulated trainer crash at epoch {epoch} (CUDA error: an illegal memory access)"
                outcome.paused_at = self.saved_states.get(_key(request))  # the protocol: a state to go on from
                self._write_progress(request, outcome, epoch, finished=True, losses=losses)
                return self._finish(request, outcome)
            stop = False
            if epoch in evaluated:
                score = self.surface.observe(flat, epoch)
                validation_loss = self.surface.validation_loss(flat, epoch)
                outcome.gpu_seconds += self.surface.seconds_per_evaluation
                outcome.epoch_scores[epoch] = score
                losses[epoch] = validation_loss
                self.saved_states[_key(request)] = epoch  # the state of each sample epoch (the newest only)
                self._write_progress(request, outcome, epoch, finished=epoch == last_epoch, losses=losses)
                # A stop asked at the last epoch has nothing left to save: the run simply completes.
                stop = report(epoch, score, validation_loss=validation_loss) and epoch < last_epoch
                if request.until_epoch is not None and epoch >= request.until_epoch and epoch < last_epoch:
                    stop = True
            else:
                self._write_progress(request, outcome, epoch, finished=epoch == last_epoch, losses=losses)
            if stop:
                outcome.stopped_early = True
                outcome.paused_at = epoch  # its state is saved: it can continue from here
                break
        else:
            self.saved_states.pop(_key(request), None)  # finished: nothing left to continue
        return self._finish(request, outcome)

    def _finish(self, request: TrialRequest, outcome: TrialOutcome) -> TrialOutcome:
        self.clock_seconds += outcome.gpu_seconds
        outcome.best_epoch = best_epoch_of(outcome.epoch_scores)
        if outcome.best_epoch is not None:
            outcome.checkpoint = str(request.run_dir / f"simulated-{outcome.best_epoch:06d}.safetensors")
        return outcome

    def _write_progress(self, request: TrialRequest, outcome: TrialOutcome, epoch: int, *,
                        finished: bool, losses: dict[int, float] | None = None) -> None:
        if not self.record_progress:
            return
        atomic_write_json(request.directory / PROGRESS_FILE, {
            "pid": os.getpid(), "epochs_done": epoch, "finished": finished,
            "scores": {str(e): s for e, s in outcome.epoch_scores.items()},
            "gpu_seconds": outcome.gpu_seconds,
            "validation_losses": {str(e): loss for e, loss in (losses or {}).items()},
            "state_epoch": self.saved_states.get(_key(request)),
        })


def _key(request: TrialRequest) -> tuple[str, int]:
    return (request.study_name, request.number)
