"""A person's verdict: a blind comparison page of the top checkpoints, and what their votes decide.

Example::

    from orchestrator.verdict import apply_votes, select_candidates, write_comparison_page

    page = write_comparison_page(select_candidates("outputs/search", top=5))   # SEARCH/verdict/compare.html
    # ... a person votes in the browser and exports votes.json beside the page ...
    result = apply_votes("outputs/search/verdict/votes.json", config_out="configs/evaluation/mine.toml")
    print(result.document["chosen"])
"""

from orchestrator.verdict.apply import VerdictResult, apply_votes
from orchestrator.verdict.candidates import Candidate, CandidateSet, load_candidates, select_candidates
from orchestrator.verdict.page import PageResult, write_comparison_page
from orchestrator.verdict.ranking import Ranking, rank
from orchestrator.verdict.votes import Vote, read_votes
from orchestrator.verdict.weights import FittedWeights, fit_weights

__all__ = [
    "Candidate",
    "CandidateSet",
    "FittedWeights",
    "PageResult",
    "Ranking",
    "VerdictResult",
    "Vote",
    "apply_votes",
    "fit_weights",
    "load_candidates",
    "rank",
    "read_votes",
    "select_candidates",
    "write_comparison_page",
]
