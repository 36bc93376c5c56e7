"""``votes.json`` from the page, checked against the page's manifest before anything counts.

Refused, each with a message naming the file: another tool's file, votes of another candidate set
(another run, other candidates, or epochs scored again since the page was written), a file edited
after export (checksum, unknown or repeated comparison ids, unknown choices) and too few votes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.common.errors import UserInputError
from orchestrator.verdict.page import VOTES_FORMAT, VOTES_VERSION

CHOICES = ("left", "right", "tie", "skip")
OUTCOME = {"left": 1.0, "right": 0.0, "tie": 0.5}  # for the left side


@dataclass(frozen=True)
class Vote:
    """One judged comparison, in candidate ids: ``outcome`` 1 = first better, 0 = second, 0.5 = tie."""

    first: str
    second: str
    outcome: float
    prompt_index: int
    seed: int


def votes_checksum(entries: list[dict[str, Any]]) -> str:
    """FNV-1a (32 bit) over ``token:choice`` lines, as the page computes it."""
    text = "\n".join(f"{e['id']}:{e['choice']}" for e in entries)
    value = 0x811C9DC5
    for unit in memoryview(text.encode("utf-16-le")).cast("H"):  # JavaScript strings are UTF-16 code units
        value ^= unit
        value = (value * 0x01000193) & 0xFFFFFFFF
    return f"{value:08x}"


def read_votes(path: Path, manifest: dict[str, Any], *, min_votes: int = 10) -> tuple[list[Vote], int]:
    """The decisive and tied votes of ``path`` (skips dropped) and the number of skips."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserInputError(f"cannot read the votes: {error}", path=path) from error
    if not isinstance(data, dict) or data.get("format") != VOTES_FORMAT:
        raise UserInputError("not a votes file of the blind comparison page", path=path, key="format")
    if data.get("version") != VOTES_VERSION:
        raise UserInputError(f"votes version {data.get('version')!r}, this tool reads {VOTES_VERSION}",
                             path=path, key="version")
    if data.get("set_id") != manifest["set_id"]:
        raise UserInputError(
            f"these votes were made on another set of candidates ({data.get('set_id')}), not on the page of "
            f"{manifest['source']} ({manifest['set_id']})", path=path, key="set_id",
            hint="apply them to the run or search whose page they came from")
    entries = data.get("votes")
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "id" in e and "choice" in e
                                                for e in entries):
        raise UserInputError("'votes' must be a list of {id, choice}", path=path, key="votes")
    if votes_checksum(entries) != data.get("checksum"):
        raise UserInputError("the checksum does not match the votes: the file was changed after export",
                             path=path, key="checksum", hint="export the votes from the page again")
    comparisons = {c["token"]: c for c in manifest["comparisons"]}
    seen: set[str] = set()
    votes, skipped = [], 0
    for entry in entries:
        token, choice = entry["id"], entry["choice"]
        if token not in comparisons:
            raise UserInputError(f"comparison '{token}' is not on this page", path=path, key="votes")
        if token in seen:
            raise UserInputError(f"comparison '{token}' is voted twice", path=path, key="votes")
        if choice not in CHOICES:
            raise UserInputError(f"choice {choice!r} is not one of {', '.join(CHOICES)}", path=path, key="votes")
        seen.add(token)
        if choice == "skip":
            skipped += 1
            continue
        comparison = comparisons[token]
        votes.append(Vote(comparison["left"], comparison["right"], OUTCOME[choice], comparison["prompt_index"],
                          comparison["seed"]))
    if len(votes) < min_votes:
        raise UserInputError(
            f"{len(votes)} usable votes ({skipped} skipped), at least {min_votes} are needed to rank "
            f"{len(manifest['candidates'])} checkpoints", path=path,
            hint="keep voting on the page (your votes are kept) and export again, or lower --min-votes")
    # In candidate order, not token order: the fit and its resamples then depend on the votes alone.
    return sorted(votes, key=lambda v: (v.first, v.second, v.prompt_index, v.seed, v.outcome)), skipped
