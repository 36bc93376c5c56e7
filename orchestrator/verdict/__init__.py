"""A person's verdict: a blind comparison page of the top checkpoints, and what their votes decide.

Example::

    from orchestrator.verdict import apply_votes, select_candidates, write_comparison_page

    page = write_comparison_page(select_candidates("outputs/search", top=5))   # SEARCH/verdict/compare.html
    # ... a person votes in the browser and exports votes.json beside the page ...
    result = apply_votes("outputs/search/verdict/votes.json", config_out="configs/evaluation/mine.toml")
    print(result.document["chosen"])

The names below are imported on first use, so that ``lora-pipeline --help`` and every other command (which
import ``orchestrator.verdict.cli``) do not load scipy (1.7 s).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "VerdictResult": "apply", "apply_votes": "apply",
    "Candidate": "candidates", "CandidateSet": "candidates", "load_candidates": "candidates",
    "select_candidates": "candidates",
    "PageResult": "page", "write_comparison_page": "page",
    "Ranking": "ranking", "rank": "ranking",
    "Vote": "votes", "read_votes": "votes",
    "FittedWeights": "weights", "fit_weights": "weights",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'orchestrator.verdict' has no attribute {name!r}")
    return getattr(importlib.import_module(f"orchestrator.verdict.{_EXPORTS[name]}"), name)
