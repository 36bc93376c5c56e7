"""Run folders as evaluation leaves them (scores.json, best.json, samples), and votes from a known taste."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from orchestrator.verdict.comparisons import MANIFEST_NAME
from orchestrator.verdict.page import VOTES_FORMAT, VOTES_VERSION
from orchestrator.verdict.votes import votes_checksum

METRICS = ("identity", "character_variety", "style_consistency", "prompt_adherence", "technical_quality")
PROMPTS = {"0": "luca, close-up portrait", "1": "luca, running on a beach", "2": "luca, sitting on a boat"}


def make_scored_run(root: Path, metric_rows: list[dict[str, float]], *, weights: dict[str, float] | None = None,
                    seeds=(11, 12, 13), colour_seed: int = 0) -> Path:
    """A run whose epoch ``n + 1`` has ``metric_rows[n]`` and one 32x32 sample per prompt and seed."""
    weights = weights or {m: 1 / len(METRICS) for m in METRICS}
    rng = np.random.default_rng(colour_seed)
    (root / "sample").mkdir(parents=True, exist_ok=True)
    epochs = {}
    for n, metrics in enumerate(metric_rows):
        epoch = n + 1
        images = []
        for index, seed in enumerate(seeds):
            name = f"sample/luca_e{epoch:06d}_{index:02d}_20260101120000_{seed}.png"
            pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name)
            images.append({"name": name, "prompt_index": index, "seed": seed, "identity": metrics["identity"]})
        total = sum(weights[m] * metrics[m] for m in METRICS)
        epochs[str(epoch)] = {"epoch": epoch, "total": total, "metrics": metrics, "raw": {},
                              "checkpoint": str(root / f"luca-{epoch:06d}.safetensors"), "warnings": [],
                              "images": images}
    (root / "evaluation").mkdir(exist_ok=True)
    (root / "evaluation" / "scores.json").write_text(json.dumps(
        {"schema": 1, "run_dir": str(root), "prompts": PROMPTS, "epochs": epochs}))
    best = max(epochs.values(), key=lambda e: e["total"])
    (root / "evaluation" / "best.json").write_text(json.dumps(
        {"epoch": best["epoch"], "checkpoint": best["checkpoint"], "total": best["total"],
         "reason": "highest total", "weights": weights, "eligible_epochs": [int(k) for k in epochs]}))
    return root


def random_metric_rows(count: int, seed: int) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [dict(zip(METRICS, rng.uniform(0.2, 0.9, len(METRICS)), strict=True)) for _ in range(count)]


def simulated_choices(page_folder: Path, hidden: dict[str, float], *, sharpness: float, tie: float = 0.3,
                      seed: int = 0) -> list[dict[str, str]]:
    """Votes of a person whose taste is ``sharpness * sum(hidden[m] * metric)`` (Davidson noise), one on
    every comparison of the page."""
    manifest = json.loads((page_folder / MANIFEST_NAME).read_text())
    utility = {c["id"]: sharpness * sum(hidden[m] * c["metrics"][m] for m in hidden) for c in manifest["candidates"]}
    rng = np.random.default_rng(seed)
    entries = []
    # Drawn in an order that does not depend on the page's shuffle, so a seed always gives the same votes.
    def canonical(c: dict) -> tuple:
        return (*sorted((c["left"], c["right"])), c["prompt_index"], c["seed"])

    for comparison in sorted(manifest["comparisons"], key=canonical):
        first, second = sorted((comparison["left"], comparison["right"]))
        strong, weak = np.exp(utility[first]), np.exp(utility[second])
        draw = rng.random() * (strong + weak + tie * np.sqrt(strong * weak))
        winner = first if draw < strong else second if draw < strong + weak else None
        choice = "tie" if winner is None else "left" if winner == comparison["left"] else "right"
        entries.append({"id": comparison["token"], "choice": choice})
    return entries


def write_votes(path: Path, set_id: str, entries: list[dict[str, str]], **changes) -> Path:
    entries = sorted(entries, key=lambda e: e["id"])
    document = {"format": VOTES_FORMAT, "version": VOTES_VERSION, "set_id": set_id, "source": "",
                "comparisons": len(entries), "votes": entries, "checksum": votes_checksum(entries)}
    document.update(changes)
    path.write_text(json.dumps(document))
    return path
