"""Pause, don't prune: which run gets the GPU next. Pure decisions on small typed objects.

Every run saves its training state at each sample epoch, so no decision is final: a run that looks weak
is *paused* (its state kept), and taken up again when the evidence turns. Two moments ask for a decision:

* :func:`at_rung` -- the running run just scored a sample epoch (a *rung*, as in ASHA): go on, or pause?
* :func:`next_action` -- the GPU is free: resume a paused run, start a new configuration, or stop?

``pause`` is asynchronous successive halving with promotion
(ASHA, Li et al. 2020) whose ranking is a learning-curve model's prediction of each run's *final* best
(``curve_model.py``) instead of its raw score at the rung -- the raw score ranks learning speed, and throws
slow learners that would peak highest away (the failure of the median pruner). A run goes on while it is
in the top ``1/ETA`` of the runs that reached its rung and its upper bound still beats the best score so
far; it pauses otherwise, or when it is past its peak (``early_stop.past_peak``; a pause too: the restarts
of a cosine schedule can climb again). A paused run is promoted (resumed) when it re-enters that top
fraction -- as more runs reach its rung, and as the model learns the pace of configurations like it, the
ranking changes. Near the end of the budget (or once the study has all its configurations) no new
configuration starts: the paused runs whose upper bound (``FINISH_KAPPA`` standard deviations) could still
beat the best are run on, most promising first, so that no winner is left paused.

``first-epoch`` is the plain rule of Egele et al. (2023): every configuration trains to its first sample
epoch and pauses; after every ``FIRST_EPOCH_BATCH`` new ones, the best paused by that score runs to its end.
It is the default of ``lora-pipeline search`` (``choices.DEFAULT_SCHEDULER``): on the bench it beat ``pause``,
and the issue's rule ships the simpler rule then.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from orchestrator.search.curve_model import CurveModel, CurveState, Prediction
from orchestrator.search.early_stop import past_peak

ETA = 3  # a run goes on while it is in the top third of the runs that reached its rung
KAPPA = 1.0  # standard deviations of optimism while ranking and promoting
FINISH_KAPPA = 2.0  # ... when deciding whether a paused run could still beat the best
END_SHARE = 0.15  # the last share of the GPU budget finishes paused runs instead of starting new ones
FIRST_EPOCH_BATCH = 4
PAST_PEAK = "past_peak"
NOT_PROMOTED = "not_promoted"

Phase = Literal["training", "paused", "finished"]


@dataclass(frozen=True)
class RunView:
    """One run as the scheduler sees it."""

    number: int
    curve: CurveState
    phase: Phase
    seconds_per_epoch: float = 0.0  # measured GPU-seconds per epoch (0 = not known yet)
    promoted: bool = False  # first-epoch: already chosen to run on

    @property
    def rung(self) -> int:
        return len(self.curve.scores)

    @property
    def next_epoch(self) -> int:
        return max(self.curve.scores, default=0) + 1


@dataclass(frozen=True)
class Budget:
    spent_seconds: float
    total_seconds: float | None  # None: the search ends by its count of configurations, not GPU time
    configurations: int  # configurations started so far
    target_configurations: int

    @property
    def left_seconds(self) -> float:
        return math.inf if self.total_seconds is None else self.total_seconds - self.spent_seconds

    @property
    def ending(self) -> bool:
        if self.configurations >= self.target_configurations:
            return True
        return self.total_seconds is not None and self.left_seconds <= END_SHARE * self.total_seconds


@dataclass(frozen=True)
class Action:
    kind: Literal["new", "resume", "stop"]
    number: int | None = None
    reason: str = ""


def incumbent(runs: Sequence[RunView]) -> float:
    """The best score any run has shown (its checkpoint is on disk)."""
    return max((run.curve.best for run in runs if run.curve.scores), default=-math.inf)


def fit_model(runs: Sequence[RunView]) -> CurveModel:
    """The model learns from the runs that are done: trained to their end, or past their peak."""
    done = [run.curve for run in runs if run.phase == "finished" or past_peak(run.curve.scores, 2)]
    return CurveModel.fit(done, others=[run.curve for run in runs if run.phase != "finished"])


class Ranks:
    """ASHA's promotion test, ranked by the model: how good each run looked when it stood at a rung (its
    predicted final best from there, with a little optimism so that an uncertain run is not ranked below
    a sure one of the same mean). Values are computed once per decision and rung."""

    def __init__(self, model: CurveModel, runs: Sequence[RunView]) -> None:
        self.model = model
        self.runs = runs
        self._values: dict[tuple[int, int], float] = {}
        self._tables: dict[int, list[float]] = {}

    def value(self, run: RunView, rung: int) -> float:
        key = (run.number, rung)
        if key not in self._values:
            self._values[key] = self.model.predict(run.curve.upto(rung)).upper(KAPPA)
        return self._values[key]

    def in_top_fraction(self, run: RunView) -> bool:
        """True when fewer than ``ceil(n / ETA)`` of the ``n`` runs that reached ``run``'s rung looked better
        there than it did."""
        rung = run.rung
        if rung not in self._tables:
            self._tables[rung] = sorted(self.value(other, rung) for other in self.runs if other.rung >= rung)
        table = self._tables[rung]
        mine = self.value(run, rung)
        better = len(table) - bisect.bisect_right(table, mine)
        return better < math.ceil(max(len(table), 1) / ETA)


def in_top_fraction(model: CurveModel, run: RunView, runs: Sequence[RunView]) -> bool:
    return Ranks(model, [*runs, run] if all(r.number != run.number for r in runs) else runs).in_top_fraction(run)


def at_rung(strategy: str, run: RunView, runs: Sequence[RunView], budget: Budget,
            model: CurveModel | None = None) -> str | None:
    """The running ``run`` just scored a sample epoch: None to go on, else why it pauses."""
    if run.next_epoch > run.curve.last_epoch:
        return None  # its last epoch: it finishes
    if past_peak(run.curve.scores, 2):
        return PAST_PEAK
    if strategy == "first-epoch":
        return NOT_PROMOTED if run.rung == 1 and not run.promoted else None
    model = model or fit_model(runs)
    prediction = model.predict(run.curve)
    if prediction.upper(FINISH_KAPPA if budget.ending else KAPPA) <= incumbent(runs):
        return NOT_PROMOTED
    if budget.ending:
        return None  # finishing: it could still beat the best
    return None if in_top_fraction(model, run, runs) else NOT_PROMOTED


def pause_is_final(strategy: str, reason: str) -> bool:
    """Whether a pause for ``reason`` is one the strategy never takes back. ``first-epoch`` resumes only runs
    waiting at their first rung, so its run paused past its peak has ended (as ``--patience`` ends a run in
    the search without pauses); ``pause`` may finish such a run near the end of the budget."""
    return strategy == "first-epoch" and reason == PAST_PEAK


def next_action(strategy: str, runs: Sequence[RunView], budget: Budget, model: CurveModel | None = None) -> Action:
    """The GPU is free: what runs on it."""
    paused = [run for run in runs if run.phase == "paused"]
    if budget.left_seconds <= 0:
        return Action("stop", reason="the GPU budget is spent")
    if strategy == "first-epoch":
        return _next_first_epoch(paused, runs, budget)
    model = model or fit_model(runs)
    best = incumbent(runs)
    predictions = {run.number: model.predict(run.curve) for run in paused}
    if budget.ending:
        could_win = [run for run in paused if predictions[run.number].upper(FINISH_KAPPA) > best
                     and _affordable(run, budget)]
        if could_win:
            chosen = max(could_win, key=lambda run: _priority(predictions[run.number], best))
            return Action("resume", chosen.number, "finishing: its upper bound could still beat the best")
        if budget.configurations >= budget.target_configurations:
            return Action("stop", reason="no paused run could still beat the best")
        return Action("new")
    ranks = Ranks(model, runs)
    promotable = [run for run in paused if not past_peak(run.curve.scores, 2)
                  and predictions[run.number].upper(KAPPA) > best and ranks.in_top_fraction(run)]
    if promotable:
        chosen = max(promotable, key=lambda run: _priority(predictions[run.number], best))
        return Action("resume", chosen.number, "promoted: back in the top fraction of its rung")
    return Action("new")


def _next_first_epoch(paused: Sequence[RunView], runs: Sequence[RunView], budget: Budget) -> Action:
    waiting = [run for run in paused if run.rung == 1 and not run.promoted]
    promoted = sum(1 for run in runs if run.promoted)
    due = len([run for run in runs if run.rung >= 1]) // FIRST_EPOCH_BATCH > promoted
    if waiting and (due or budget.ending):
        chosen = max(waiting, key=lambda run: run.curve.best)
        if _affordable(chosen, budget):
            return Action("resume", chosen.number, "best first-epoch score of its batch")
    if budget.configurations >= budget.target_configurations:
        return Action("stop", reason="every configuration started")
    return Action("new")


def _priority(prediction: Prediction, best: float) -> float:
    """Expected improvement over the best so far (a normal prediction): what resuming it may buy."""
    if prediction.std <= 0:
        return max(prediction.mean - best, 0.0)
    z = (prediction.mean - best) / prediction.std
    return (prediction.mean - best) * _cdf(z) + prediction.std * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _affordable(run: RunView, budget: Budget) -> bool:
    """Enough budget left for at least one more sample epoch of the run (unknown cost: yes)."""
    return run.seconds_per_epoch <= 0 or budget.left_seconds >= run.seconds_per_epoch
