"""The checkpoints a person compares, read from what evaluation and search leave on disk.

This module is the only place that reads ``evaluation/scores.json`` and ``trial_results.json`` for the
verdict stage, and it reads only fields that stay stable while evaluation evolves: each epoch's
``metrics`` (whatever names they carry), its ``total``, its ``checkpoint`` and each image's ``name``,
``prompt_index`` and ``seed``. A candidate is one epoch of one run; a search contributes the epochs of
all its trials.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.common.errors import UserInputError

SCORES_FILE = Path("evaluation") / "scores.json"
TRIAL_RUN_FOLDER = "run"
BEST_FILE = Path("evaluation") / "best.json"
TRIAL_RESULTS_FILE = "trial_results.json"

SampleKey = tuple[int, int]  # (prompt index, seed): the same prompt and seed make two samples comparable


@dataclass(frozen=True)
class Candidate:
    """One checkpoint: an epoch of a run, with its automatic scores and its samples."""

    id: str  # "epoch-4" for a run, "trial-0003/epoch-4" for a search
    run_dir: Path
    epoch: int
    total: float | None
    metrics: dict[str, float | None]
    checkpoint: str | None
    samples: dict[SampleKey, Path] = field(default_factory=dict)
    prompts: dict[int, str] = field(default_factory=dict)  # prompt index -> text, shown beside the pair


@dataclass(frozen=True)
class CandidateSet:
    """The candidates shown on one page, and the source they came from."""

    source: Path  # a run folder or a search output folder
    kind: str  # "run" | "search"
    candidates: tuple[Candidate, ...]

    @property
    def metric_names(self) -> tuple[str, ...]:
        names: dict[str, None] = {}
        for candidate in self.candidates:
            names.update(dict.fromkeys(candidate.metrics))
        return tuple(names)

    @property
    def set_id(self) -> str:
        """A hash of what the person judges: which checkpoints, which samples, which scores. Votes made on a
        page of any other set (another run, other candidates, re-scored epochs) carry another id."""
        document = [{"id": c.id, "run_dir": str(c.run_dir), "total": c.total, "metrics": c.metrics,
                     "samples": sorted(f"{k[0]}:{k[1]}:{p.name}" for k, p in c.samples.items())}
                    for c in self.candidates]
        text = json.dumps({"source": str(self.source), "candidates": document}, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def by_id(self, candidate_id: str) -> Candidate:
        for candidate in self.candidates:
            if candidate.id == candidate_id:
                return candidate
        raise KeyError(candidate_id)


def load_candidates(source: str | Path) -> list[Candidate]:
    """Every scored epoch of a run folder (has ``evaluation/scores.json``) or of a search output folder
    (has ``trial_results.json``), each with its samples."""
    source = Path(source)
    if (source / TRIAL_RESULTS_FILE).is_file():
        return _search_candidates(source)
    if (source / SCORES_FILE).is_file():
        return _run_candidates(source, prefix="")
    raise UserInputError(f"neither {SCORES_FILE} (a run) nor {TRIAL_RESULTS_FILE} (a search) is here",
                         path=source, hint="run `lora-pipeline evaluate RUN_DIR` or a search first")


def source_kind(source: Path) -> str:
    return "search" if (Path(source) / TRIAL_RESULTS_FILE).is_file() else "run"


def select_candidates(source: str | Path, *, top: int, include: tuple[str, ...] = ()) -> CandidateSet:
    """The ``top`` candidates by automatic total (unscored ones last), plus any named in ``include``
    (by id, or by epoch number for a run), keeping only candidates that share a prompt and seed with
    another one (nothing else can be compared)."""
    source = Path(source)
    everything = load_candidates(source)
    if top < 1:
        raise UserInputError("--top must be at least 1", key="top")
    ranked = sorted(everything, key=lambda c: (c.total is None, -(c.total or 0.0), c.id))
    chosen = ranked[:top]
    for name in include:
        match = [c for c in everything if c.id == name or c.id == f"epoch-{name}" or c.id.endswith(f"/{name}")]
        if not match:
            raise UserInputError(f"no candidate '{name}'", path=source,
                                 hint="known: " + ", ".join(c.id for c in everything))
        chosen.extend(c for c in match if c not in chosen)
    comparable = [c for c in chosen if any(set(c.samples) & set(o.samples) for o in chosen if o is not c)]
    if len(comparable) < 2:
        raise UserInputError(
            f"{len(comparable)} candidate(s) with samples of a prompt and seed that another candidate also has; "
            "a comparison needs two", path=source, hint="raise --top or --include more checkpoints")
    return CandidateSet(source=source, kind=source_kind(source), candidates=tuple(comparable))


def candidate_set_of(source: str | Path, ids: tuple[str, ...]) -> CandidateSet:
    """The named candidates as they are on disk now, in the given order (missing ones left out)."""
    source = Path(source)
    found = {c.id: c for c in load_candidates(source)}
    return CandidateSet(source=source, kind=source_kind(source),
                        candidates=tuple(found[i] for i in ids if i in found))


def _run_candidates(run_dir: Path, *, prefix: str) -> list[Candidate]:
    path = run_dir / SCORES_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserInputError(f"cannot read the scores: {error}", path=path) from error
    epochs = data.get("epochs") if isinstance(data, dict) else None
    if not isinstance(epochs, dict):
        raise UserInputError("no 'epochs' table", path=path, key="epochs")
    prompts = {int(k): str(v) for k, v in (data.get("prompts") or {}).items() if str(k).isdigit()}
    candidates = []
    for key, entry in epochs.items():
        if not isinstance(entry, dict):
            raise UserInputError("an epoch entry is not a table", path=path, key=f"epochs.{key}")
        epoch = int(entry.get("epoch", key))
        samples = {}
        for image in entry.get("images") or []:
            if image.get("seed") is None or image.get("prompt_index") is None or not image.get("name"):
                continue  # without a seed two samples are not the same draw
            sample = Path(image["name"])
            samples[(int(image["prompt_index"]), int(image["seed"]))] = sample if sample.is_absolute() \
                else run_dir / sample
        candidates.append(Candidate(
            id=f"{prefix}epoch-{epoch}", run_dir=run_dir, epoch=epoch, total=_number(entry.get("total")),
            metrics={str(k): _number(v) for k, v in (entry.get("metrics") or {}).items()},
            checkpoint=entry.get("checkpoint"), samples=samples, prompts=prompts))
    return sorted(candidates, key=lambda c: c.epoch)


def _search_candidates(output: Path) -> list[Candidate]:
    path = output / TRIAL_RESULTS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserInputError(f"cannot read the trial results: {error}", path=path) from error
    candidates: list[Candidate] = []
    for trial in data.get("trials") or []:
        directory = trial.get("directory")
        # The search trains each trial in its folder's run/ (search.executor's TrialSpec.run_dir).
        runs = [Path(directory), Path(directory) / TRIAL_RUN_FOLDER] if directory else []
        run = next((r for r in runs if (r / SCORES_FILE).is_file()), None)
        if run is None:
            continue  # rejected, failed before sampling, or never evaluated
        candidates.extend(_run_candidates(run, prefix=f"trial-{int(trial['number']):04d}/"))
    if not candidates:
        raise UserInputError("no trial has evaluation scores", path=path)
    return candidates


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
