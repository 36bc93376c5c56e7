"""Does the person agree with the metrics, and which checkpoint is chosen (and why).

Agreement is measured three ways, for the automatic total and for each metric alone: whether both
put the same candidate first (top-1), rank correlations over the candidates (Kendall's tau and
Spearman's rho), and the share of decisive votes whose winner the metric scores higher.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import kendalltau, spearmanr

from orchestrator.verdict.candidates import CandidateSet
from orchestrator.verdict.ranking import Ranking
from orchestrator.verdict.votes import Vote

TOTAL = "total"
AGREEING_TAU = 0.3  # Kendall's tau above this: the metric "agrees" in the report's words


@dataclass(frozen=True)
class Agreement:
    measure: str  # "total" or a metric name
    top1: bool
    metric_first: str | None
    kendall_tau: float | None
    spearman_rho: float | None
    vote_agreement: float | None  # share of decisive votes the measure predicts

    @property
    def verdict(self) -> str:
        if self.kendall_tau is None:
            return "cannot tell (equal for every candidate)"
        if self.kendall_tau >= AGREEING_TAU:
            return "agrees"
        return "disagrees" if self.kendall_tau < 0 else "weak"


@dataclass(frozen=True)
class Choice:
    candidate: str
    by: str  # "person" | "metrics"
    reason: str
    metrics_choice: str | None


def _values(candidate_set: CandidateSet, measure: str) -> dict[str, float | None]:
    if measure == TOTAL:
        return {c.id: c.total for c in candidate_set.candidates}
    return {c.id: c.metrics.get(measure) for c in candidate_set.candidates}


def agreement(candidate_set: CandidateSet, ranking: Ranking, votes: Sequence[Vote], measure: str) -> Agreement:
    values = _values(candidate_set, measure)
    known = [i for i in ranking.ids if values.get(i) is not None]
    person = [ranking.strength[i] for i in known]
    machine = [values[i] for i in known]
    first = max(known, key=lambda i: values[i]) if known else None
    tau = rho = None
    if len(known) >= 2 and len(set(machine)) > 1 and len(set(person)) > 1:
        tau = float(kendalltau(person, machine).statistic)
        rho = float(spearmanr(person, machine).statistic)
    decisive = [v for v in votes if v.outcome != 0.5 and values.get(v.first) is not None
                and values.get(v.second) is not None and values[v.first] != values[v.second]]
    predicted = [(values[v.first] > values[v.second]) == (v.outcome == 1.0) for v in decisive]
    return Agreement(measure=measure, top1=first == ranking.ids[0], metric_first=first,
                     kendall_tau=None if tau is None or np.isnan(tau) else tau,
                     spearman_rho=None if rho is None or np.isnan(rho) else rho,
                     vote_agreement=float(np.mean(predicted)) if predicted else None)


def all_agreements(candidate_set: CandidateSet, ranking: Ranking, votes: Sequence[Vote]) -> list[Agreement]:
    return [agreement(candidate_set, ranking, votes, m) for m in (TOTAL, *candidate_set.metric_names)]


def choose(candidate_set: CandidateSet, ranking: Ranking) -> Choice:
    """The person's first when the votes separate it from the second, otherwise the metrics' first."""
    scored = [c for c in candidate_set.candidates if c.total is not None]
    metrics_first = max(scored, key=lambda c: c.total or 0.0).id if scored else None
    person_first, runner_up = ranking.ids[0], ranking.ids[1]
    low, high = ranking.top_margin_interval
    evidence = (f"{ranking.votes} votes; {person_first} ahead of {runner_up} by {ranking.top_margin:.2f} "
                f"(95% interval {low:.2f} to {high:.2f}), first in {ranking.probability_first[person_first]:.0%} "
                "of resampled fits")
    if ranking.separated:
        agree = " (the metrics agree)" if person_first == metrics_first else (
            f" (the metrics preferred {metrics_first})" if metrics_first else "")
        return Choice(person_first, "person", f"the votes separate the top: {evidence}{agree}", metrics_first)
    if metrics_first is None:
        return Choice(person_first, "person", f"no automatic score to fall back on; the votes do not separate "
                                              f"the top: {evidence}", None)
    return Choice(metrics_first, "metrics", f"the votes do not separate the top ({evidence}); the metrics' "
                                            f"choice stands, more votes could change it", metrics_first)
