"""Live progress for the two long stages of a run: a training run's steps and the search's trials.

Both use the project's one progress-bar style (``orchestrator.common.progress``); the bar's elapsed
clock keeps moving while a trial trains in tmux, so the screen never looks frozen.
"""

from __future__ import annotations

from typing import Any

from orchestrator.common.progress import progress_bar


class TrainingProgress:
    """``on_event`` for ``RunHandle.follow``: steps done of the total, epoch, loss and s/it."""

    def __init__(self, *, enabled: bool = True) -> None:
        self._bar = progress_bar(unit="step") if enabled else None
        self._task: Any = None

    def __enter__(self) -> TrainingProgress:
        if self._bar is not None:
            self._bar.__enter__()
            self._task = self._bar.add_task("training (loading model)", total=None, rate="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)

    def on_event(self, event: Any, record: Any) -> None:
        from orchestrator.kohya.log_grammar import EpochStarted, RunSummary, SamplesGenerated, StepProgress

        if self._bar is None:
            return
        if isinstance(event, RunSummary) and event.total_steps:
            self._bar.update(self._task, total=event.total_steps, description="training")
        elif isinstance(event, EpochStarted):
            self._bar.update(self._task, description=f"training epoch {event.epoch}/{event.total_epochs}")
        elif isinstance(event, StepProgress):
            loss = f"loss {event.avr_loss:.4f}" if event.avr_loss is not None else ""
            speed = f"{event.s_per_it:.2f} s/step" if event.s_per_it else ""
            self._bar.update(self._task, completed=event.step, total=event.total_steps,
                             rate=", ".join(part for part in (loss, speed) if part))
        elif isinstance(event, SamplesGenerated):
            self._bar.update(self._task, description=f"sampling epoch {event.epoch}")


class SearchProgress:
    """``on_progress`` for ``Search.run``: trials counted of the total and the best score so far."""

    def __init__(self, total: int, *, enabled: bool = True) -> None:
        self._bar = progress_bar(unit="trial") if enabled else None
        self._total = total
        self._task: Any = None

    def __enter__(self) -> SearchProgress:
        if self._bar is not None:
            self._bar.__enter__()
            self._task = self._bar.add_task("search (trial 1)", total=self._total, rate="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)

    def on_progress(self, trials: list[Any]) -> None:
        from orchestrator.search.results import counted_trials

        if self._bar is None:
            return
        counted = len(counted_trials(trials))
        values = [t.value for t in trials if t.value is not None]
        pruned = sum(1 for t in trials if t.state.name == "PRUNED")
        best = f"best {max(values):.3f}" if values else ""
        rate = ", ".join(part for part in (best, f"{pruned} pruned" if pruned else "") if part)
        description = "search" if counted >= self._total else f"search (trial {counted + 1})"
        self._bar.update(self._task, completed=counted, description=description, rate=rate)
