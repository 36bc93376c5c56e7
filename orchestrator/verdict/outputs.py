"""What ``votes apply`` leaves behind: ``verdict.json``, ``verdict.html``, the choice in ``best.json`` and,
on request, an evaluation config with the fitted weights.

``best.json`` of a run keeps every field evaluation wrote; the verdict adds a ``verdict`` table (the
chosen checkpoint, who chose it and why, the metrics' own choice). A search has no ``best.json`` of its
own, so its verdict writes ``SEARCH/verdict/best.json`` in the same shape.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_write_json, atomic_write_text
from orchestrator.common.errors import UserInputError
from orchestrator.verdict.candidates import BEST_FILE, CandidateSet
from orchestrator.verdict.decision import Agreement, Choice
from orchestrator.verdict.ranking import Ranking
from orchestrator.verdict.weights import FittedWeights

WEIGHT_DIGITS = 3


def verdict_document(candidate_set: CandidateSet, ranking: Ranking, agreements: list[Agreement], choice: Choice,
                     fitted: FittedWeights, *, votes_file: Path, skipped: int) -> dict[str, Any]:
    chosen = candidate_set.by_id(choice.candidate)
    return {
        "set_id": candidate_set.set_id, "source": str(candidate_set.source), "votes_file": str(votes_file),
        "votes": ranking.votes, "skipped": skipped,
        "chosen": {"candidate": chosen.id, "run_dir": str(chosen.run_dir), "epoch": chosen.epoch,
                   "checkpoint": chosen.checkpoint, "by": choice.by, "reason": choice.reason,
                   "metrics_choice": choice.metrics_choice},
        "ranking": [{"candidate": i, "strength": ranking.strength[i], "interval": list(ranking.interval[i]),
                     "probability_first": ranking.probability_first[i],
                     "total": candidate_set.by_id(i).total} for i in ranking.ids],
        "separated": ranking.separated, "tie_parameter": ranking.tie_parameter,
        "agreement": [{**asdict(a), "verdict": a.verdict} for a in agreements],
        "fitted_weights": {"weights": fitted.weights, "interval": {m: list(v) for m, v in fitted.interval.items()},
                           "sharpness": fitted.sharpness, "unidentified": list(fitted.unidentified),
                           "informative": fitted.informative},
    }


def record_choice_in_best(candidate_set: CandidateSet, document: dict[str, Any]) -> Path:
    """Add the verdict to ``best.json`` without touching what evaluation wrote there."""
    verdict = {**document["chosen"], "set_id": document["set_id"], "votes": document["votes"]}
    if candidate_set.kind == "run":
        path = candidate_set.source / BEST_FILE
        existing: dict[str, Any] = {}
        if path.is_file():
            try:
                existing = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as error:
                raise UserInputError(f"cannot update the best-checkpoint file: {error}", path=path) from error
        return atomic_write_json(path, {**existing, "verdict": verdict})
    path = candidate_set.source / "verdict" / "best.json"
    chosen = document["chosen"]
    return atomic_write_json(path, {"epoch": chosen["epoch"], "checkpoint": chosen["checkpoint"],
                                    "run_dir": chosen["run_dir"], "reason": chosen["reason"], "verdict": verdict})


def rounded_weights(weights: dict[str, float]) -> dict[str, float]:
    """Weights rounded for a config file that still add up to exactly 1 (the rest goes to the largest)."""
    rounded = {m: round(w, WEIGHT_DIGITS) for m, w in weights.items()}
    largest = max(rounded, key=lambda m: rounded[m])
    rounded[largest] = round(1.0 - sum(w for m, w in rounded.items() if m != largest), WEIGHT_DIGITS)
    return rounded


CONFIG_HEADER = "# Weights fitted to the blind votes in "


def check_config_target(path: Path) -> Path:
    """``path`` when ``--write-config`` may write there: a new file, or one an earlier ``votes apply`` wrote.

    Checked before anything is written: a hand-made evaluation config (or any other file) given by mistake
    would otherwise be replaced by a file of weights alone."""
    if path.is_dir():
        raise UserInputError("is a folder; --write-config names the TOML file to write", path=path,
                             key="write-config")
    if path.exists():
        try:
            ours = path.read_bytes().startswith(CONFIG_HEADER.encode())
        except OSError as error:
            raise UserInputError(f"cannot read the existing file: {error.strerror}", path=path,
                                 key="write-config") from error
        if not ours:
            raise UserInputError("exists and was not written by `votes apply`; refusing to replace it", path=path,
                                 key="write-config", hint="name a new file, e.g. configs/evaluation/voted.toml")
    if path.parent.exists() and not path.parent.is_dir():
        raise UserInputError("its folder is a file", path=path.parent, key="write-config")
    return path


def write_evaluation_config(path: Path, fitted: FittedWeights, *, votes_file: Path) -> Path:
    """A config laid over ``configs/evaluation/default.toml`` (``--config``/the search's evaluation) that
    changes only the weights."""
    if not fitted.informative:
        raise UserInputError("the metrics do not explain these votes (every fitted weight is 0); no config "
                             "written", path=votes_file)
    lines = [f"{CONFIG_HEADER}{votes_file} (lora-pipeline votes apply).",
             "# 95% intervals: " + ", ".join(f"{m} {lo:.2f}-{hi:.2f}" for m, (lo, hi) in fitted.interval.items()),
             "[weights]"]
    lines += [f"{metric} = {value}" for metric, value in rounded_weights(fitted.weights).items()]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def write_report(path: Path, document: dict[str, Any]) -> Path:
    chosen = document["chosen"]
    rows = "".join(
        f"<tr><td>{n}</td><td>{html.escape(r['candidate'])}</td><td>{r['strength']:.2f}</td>"
        f"<td>{r['interval'][0]:.2f} to {r['interval'][1]:.2f}</td><td>{r['probability_first']:.0%}</td>"
        f"<td>{_fmt(r['total'])}</td></tr>" for n, r in enumerate(document["ranking"], start=1))
    agreement = "".join(
        f"<tr><td>{html.escape(a['measure'])}</td><td>{'yes' if a['top1'] else 'no'}</td>"
        f"<td>{_fmt(a['kendall_tau'])}</td><td>{_fmt(a['spearman_rho'])}</td>"
        f"<td>{_fmt(a['vote_agreement'], percent=True)}</td><td>{html.escape(a['verdict'])}</td></tr>"
        for a in document["agreement"])
    fitted = document["fitted_weights"]
    weights = "".join(
        f"<tr><td>{html.escape(m)}</td><td>{w:.3f}</td><td>{fitted['interval'][m][0]:.3f} to "
        f"{fitted['interval'][m][1]:.3f}</td><td>{'not learnable (equal for all)' if m in fitted['unidentified'] else ''}"
        f"</td></tr>" for m, w in fitted["weights"].items())
    page = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Blind comparison verdict</title>
<style>body{{font:14px system-ui,sans-serif;margin:20px;max-width:980px}}table{{border-collapse:collapse;margin:8px 0 18px}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}.chosen{{background:#eef7ee;padding:10px}}</style>
</head><body><h1>Blind comparison verdict</h1>
<p>{document['votes']} votes ({document['skipped']} skipped) on {html.escape(document['source'])}
(set {html.escape(document['set_id'])}).</p>
<div class="chosen"><b>Chosen: {html.escape(chosen['candidate'])}</b> ({html.escape(str(chosen['checkpoint']))}),
by the {html.escape(chosen['by'])}: {html.escape(chosen['reason'])}.</div>
<h2>The person's ranking (Davidson–Bradley–Terry, 95% bootstrap intervals)</h2>
<table><tr><th>#</th><th>candidate</th><th>strength</th><th>interval</th><th>ranked first</th><th>automatic total</th></tr>
{rows}</table>
<h2>Did the metrics agree with the person?</h2>
<table><tr><th>measure</th><th>same first</th><th>Kendall tau</th><th>Spearman rho</th><th>votes predicted</th>
<th>verdict</th></tr>{agreement}</table>
<h2>Weights fitted to the votes</h2>
<table><tr><th>metric</th><th>weight</th><th>95% interval</th><th></th></tr>{weights}</table>
</body></html>
"""
    return atomic_write_text(path, page)


def _fmt(value: float | None, *, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0%}" if percent else f"{value:.3f}"
