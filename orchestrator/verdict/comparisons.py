"""Which pairs of samples a person is shown, and the manifest that remembers who is behind each side.

A comparison shows the samples of two candidates for the same prompt and seed. Every pair of candidates
gets its shared prompts in turn (round robin), so a page cut short by ``max_comparisons`` still covers
every pair evenly; the sides and the order are shuffled with a generator seeded by the candidate set's
id, so the same set always gives the same page. The page carries only an opaque token per comparison;
the manifest (next to the page, never inside it) maps tokens back to candidates.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_write_json
from orchestrator.common.errors import UserInputError
from orchestrator.verdict.candidates import CandidateSet

MANIFEST_FORMAT = "lora-pipeline/blind-comparison-manifest"
MANIFEST_VERSION = 1
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class Comparison:
    token: str  # what the page and the votes file know a comparison by
    left: str  # candidate ids
    right: str
    prompt_index: int
    seed: int


def comparison_token(set_id: str, left: str, right: str, prompt_index: int, seed: int) -> str:
    """Binds a token to its set and to who stands on which side: a votes file whose tokens were edited,
    swapped or copied from another page no longer matches the manifest."""
    text = f"{set_id}|{left}|{right}|{prompt_index}|{seed}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def plan_comparisons(candidate_set: CandidateSet, *, max_comparisons: int = 200) -> list[Comparison]:
    if max_comparisons < 1:
        raise UserInputError("--max-comparisons must be at least 1", key="max-comparisons")
    set_id = candidate_set.set_id
    rng = random.Random(int(set_id, 16))
    queues = []
    for first, second in itertools.combinations(candidate_set.candidates, 2):
        shared = sorted(set(first.samples) & set(second.samples))
        rng.shuffle(shared)
        if shared:
            queues.append([(first, second, key) for key in shared])
    rng.shuffle(queues)
    planned = []
    for round_ in itertools.zip_longest(*queues):
        for item in round_:
            if item is None or len(planned) >= max_comparisons:
                continue
            first, second, (prompt_index, seed) = item
            left, right = (first, second) if rng.random() < 0.5 else (second, first)
            planned.append(Comparison(comparison_token(set_id, left.id, right.id, prompt_index, seed),
                                      left.id, right.id, prompt_index, seed))
    rng.shuffle(planned)
    return planned


def manifest_document(candidate_set: CandidateSet, comparisons: list[Comparison]) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "set_id": candidate_set.set_id,
        "source": str(candidate_set.source),
        "kind": candidate_set.kind,
        "candidates": [{"id": c.id, "run_dir": str(c.run_dir), "epoch": c.epoch, "total": c.total,
                        "metrics": c.metrics, "checkpoint": c.checkpoint} for c in candidate_set.candidates],
        "comparisons": [asdict(c) for c in comparisons],
    }


def write_manifest(folder: Path, candidate_set: CandidateSet, comparisons: list[Comparison]) -> Path:
    return atomic_write_json(folder / MANIFEST_NAME, manifest_document(candidate_set, comparisons))


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserInputError(f"cannot read the page's manifest: {error}", path=path,
                             hint="write the page again with `lora-pipeline votes page`") from error
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise UserInputError("not a blind-comparison manifest", path=path, key="format")
    if data.get("version") != MANIFEST_VERSION:
        raise UserInputError(f"manifest version {data.get('version')!r}, this tool reads {MANIFEST_VERSION}",
                             path=path, key="version")
    try:
        for comparison in data["comparisons"]:
            expected = comparison_token(data["set_id"], comparison["left"], comparison["right"],
                                        comparison["prompt_index"], comparison["seed"])
            if comparison.get("token") != expected:
                raise UserInputError("a comparison's token does not match its candidates (edited by hand?)",
                                     path=path, key=f"comparisons.{comparison.get('token')}")
        data["candidates"], data["source"]  # noqa: B018 - present, or the manifest is incomplete
    except (KeyError, TypeError) as error:
        raise UserInputError(f"incomplete manifest (missing {error})", path=path,
                             hint="write the page again with `lora-pipeline votes page`") from error
    return data
