"""``search analyze`` on a study started from a prior: what came from it and whether it held.

* **Prior configs**: each enqueued config of the prior, its rank and score there, its score here.
* **Landscape correlation**: Spearman's rank correlation, over this study's completed trials, between the
  score the *nearest* prior trial had there and the trial's score here. Scores of two characters are on
  different scales; ranks are not. Near 1: where the prior scored well, this study scores well too.
  With fewer than :data:`MIN_FOR_CORRELATION` completed trials it is not computed.
* **The best trial**: whether a prior config, a prior-shaped draw or this study's own TPE proposed it,
  and whether it lies in the prior's good region (its nearest prior trial is one of the prior's top quarter).

"Held" is a summary of those figures, not a test: the correlation is above :data:`HELD_CORRELATION` and
the best trial lies in the prior's good region.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.search.space import SearchSpace
from orchestrator.search.vocabulary import COMPLETE, SEARCH_SPACE_ATTR

MIN_FOR_CORRELATION = 5
HELD_CORRELATION = 0.3


def distance(space: SearchSpace, a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """Mean per-parameter distance in [0, 1]: numbers by their share of the range (log ranges in log),
    choices 0 when equal, else 1. A parameter missing on either side counts 0.5."""
    total = 0.0
    for spec in space.parameters:
        if spec.name not in a or spec.name not in b:
            total += 0.5
        elif spec.kind == "categorical":
            total += 0.0 if a[spec.name] == b[spec.name] else 1.0
        else:
            low, high, x, y = spec.low, spec.high, float(a[spec.name]), float(b[spec.name])
            if spec.log:
                low, high, x, y = math.log(low), math.log(high), math.log(x), math.log(y)
            total += min(abs(x - y) / (high - low), 1.0)
    return total / max(len(space.parameters), 1)


def nearest(space: SearchSpace, params: Mapping[str, Any], others: Sequence[Mapping[str, Any]]) -> int:
    return min(range(len(others)), key=lambda i: distance(space, params, others[i]))


def prior_section(entries: Sequence[dict[str, Any]], attr: Mapping[str, Any] | None,
                  space: SearchSpace | None) -> dict[str, Any] | None:
    """The analysis' ``prior`` part (None for a study without a prior). ``attr``: the study's ``prior``
    user attribute (may be None when the storage is unreachable; then only the trials' own marks are used)."""
    marked = [e for e in entries if e.get("prior")]
    if not marked and not attr:
        return None
    done = [e for e in entries if e["outcome"] == COMPLETE and e["value"] is not None]
    section: dict[str, Any] = {"source": (attr or {}).get("source"), "study": (attr or {}).get("study"),
                               "epochs": (attr or {}).get("epochs"), "notes": []}
    section["configs"] = [
        {"number": e["number"], "rank_there": e["prior"].get("rank"), "trial_there": e["prior"].get("trial"),
         "score_there": e["prior"].get("score_there"), "score_here": e["value"], "outcome": e["outcome"]}
        for e in entries if (e.get("prior") or {}).get("kind") == "config"]
    draws = [e for e in marked if e["prior"].get("kind") == "draw"]
    section["draws"] = len(draws)
    own = [e for e in done if not e.get("prior")]
    section["best_draw_here"] = max((e["value"] for e in draws if e in done), default=None)
    section["best_own_here"] = max((e["value"] for e in own), default=None)
    best = max(done, key=lambda e: e["value"], default=None)
    section["best_from"] = None if best is None else (
        f"prior config {best['prior'].get('rank')}" if (best.get("prior") or {}).get("kind") == "config"
        else "prior draw" if best.get("prior") else "this study's own TPE")
    section["correlation"] = None
    section["best_in_good_region"] = None
    prior_trials = list((attr or {}).get("trials") or [])
    good = list((attr or {}).get("good_region") or [])
    if space is not None and prior_trials:
        params_there = [t["params"] for t in prior_trials]
        if len(done) >= MIN_FOR_CORRELATION:
            there = [float(prior_trials[nearest(space, e["params"], params_there)]["value"]) for e in done]
            section["correlation"] = _spearman(there, [float(e["value"]) for e in done])
        else:
            section["notes"].append(f"landscape correlation needs {MIN_FOR_CORRELATION} completed trials "
                                    f"(have {len(done)})")
        if best is not None and good:
            closest = params_there[nearest(space, best["params"], params_there)]
            section["best_in_good_region"] = any(closest == g for g in good)
    correlation = section["correlation"]
    if correlation is None or section["best_in_good_region"] is None:
        section["held"] = None
        section["verdict"] = "not enough to tell whether the prior held"
    else:
        section["held"] = bool(correlation > HELD_CORRELATION and section["best_in_good_region"])
        section["verdict"] = (
            f"the prior held: rank correlation {correlation:+.2f} with its scores there, and the best trial lies "
            "in its good region" if section["held"] else
            f"the prior did not hold (rank correlation {correlation:+.2f}; best trial "
            f"{'in' if section['best_in_good_region'] else 'outside'} its good region): the study outgrew it")
    return section


def prior_markdown(section: Mapping[str, Any]) -> list[str]:
    lines = ["", "## Prior study", "", f"- from: study {section['study']!r} in {section['source']}",
             f"- epochs: {section['epochs']}", f"- {section['verdict']}",
             f"- best trial proposed by: {section['best_from']}",
             f"- prior-shaped draws: {section['draws']} (best here {_score(section['best_draw_here'])}); "
             f"own TPE trials' best {_score(section['best_own_here'])}"]
    lines += [f"- {note}" for note in section["notes"]]
    if section["configs"]:
        lines += ["", "| trial here | rank there | trial there | score there | score here | outcome |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {c['number']} | {c['rank_there']} | {c['trial_there']} | {_score(c['score_there'])} | "
                  f"{_score(c['score_here'])} | {c['outcome']} |" for c in section["configs"]]
    return lines


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    from scipy.stats import spearmanr

    if len(set(x)) < 2 or len(set(y)) < 2:
        return None  # a constant side has no ranks to correlate
    return round(float(spearmanr(x, y).statistic), 3)


def read_study_prior(storage_url: str, study_name: str,
                     notes: list[str]) -> tuple[dict[str, Any] | None, SearchSpace | None]:
    """The study's ``prior`` attribute and its space; (None, None) with a note when the storage fails."""
    from orchestrator.search.space import parse_search_space
    from orchestrator.search.storage import study_attrs
    from orchestrator.search.vocabulary import PRIOR_ATTR

    try:
        attrs = study_attrs(storage_url, study_name)
    except Exception as error:  # an unreachable storage must not cost the rest of the analysis
        notes.append(f"the prior's record in the study is unavailable: {type(error).__name__}")
        return None, None
    space = parse_search_space(attrs[SEARCH_SPACE_ATTR]) if "search_space" in attrs else None
    return attrs.get(PRIOR_ATTR), space
