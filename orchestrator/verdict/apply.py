"""``votes apply``: from a votes file to a ranking, the agreement with the metrics, a choice and weights."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_write_json
from orchestrator.common.errors import UserInputError
from orchestrator.verdict.candidates import candidate_set_of
from orchestrator.verdict.comparisons import MANIFEST_NAME, read_manifest
from orchestrator.verdict.decision import all_agreements, choose
from orchestrator.verdict.outputs import (
    check_config_target,
    record_choice_in_best,
    verdict_document,
    write_evaluation_config,
    write_report,
)
from orchestrator.verdict.ranking import rank
from orchestrator.verdict.votes import read_votes
from orchestrator.verdict.weights import fit_weights


@dataclass(frozen=True)
class VerdictResult:
    document: dict[str, Any]
    verdict_file: Path
    report: Path
    best_file: Path
    config_file: Path | None


def apply_votes(votes_file: str | Path, *, manifest: str | Path | None = None, min_votes: int = 10,
                config_out: str | Path | None = None, resamples: int = 300) -> VerdictResult:
    """Check ``votes_file`` against its page's manifest (default: ``manifest.json`` beside it) and the
    candidates as they are on disk now, then rank, compare, choose and fit weights."""
    votes_file = Path(votes_file)
    if config_out is not None:
        check_config_target(Path(config_out))
    manifest_file = Path(manifest) if manifest else votes_file.parent / MANIFEST_NAME
    if not manifest_file.is_file():
        raise UserInputError(f"no page manifest at {manifest_file}", path=votes_file,
                             hint="put votes.json beside the page's manifest.json or pass --manifest")
    page = read_manifest(manifest_file)
    votes, skipped = read_votes(votes_file, page, min_votes=min_votes)
    ids = tuple(c["id"] for c in page["candidates"])
    # The candidates as they are now: a run scored again since the page was written is another set.
    current = candidate_set_of(page["source"], ids)
    if current.set_id != page["set_id"]:
        raise UserInputError(f"the candidates of {page['source']} changed since the page was written (scores or "
                             "samples differ), so these votes judge a set that no longer exists", path=votes_file,
                             key="set_id", hint="write the page again with `lora-pipeline votes page` and vote again")
    ranking = rank(votes, ids, resamples=resamples)
    agreements = all_agreements(current, ranking, votes)
    choice = choose(current, ranking)
    fitted = fit_weights(votes, ids, [current.by_id(i).metrics for i in ids], current.metric_names,
                         resamples=resamples)
    document = verdict_document(current, ranking, agreements, choice, fitted, votes_file=votes_file, skipped=skipped)
    folder = manifest_file.parent
    verdict_file = atomic_write_json(folder / "verdict.json", document)
    report = write_report(folder / "verdict.html", document)
    best_file = record_choice_in_best(current, document)
    config_file = write_evaluation_config(Path(config_out), fitted, votes_file=votes_file) if config_out else None
    return VerdictResult(document, verdict_file, report, best_file, config_file)
