"""A project's stages, in order: each a thin call into the stage's own public API, writing into its own
folder under the project folder, and what it reads (the options and inputs its fingerprint hashes).

A stage's ``reads`` names exactly what its work depends on, so that a change redoes what it must and no
more: the crop stage reads the profile's detector words, not the whole profile, so a new caption wording
redoes captions, training and evaluation but not the crops.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from orchestrator.project.context import (
    CAPTIONS,
    CROPS,
    CURATION,
    DATASET,
    DECISIONS,
    FRAMES,
    SEARCH,
    SELECTED,
    TRAINING,
    NeedsPerson,
    RunContext,
    StageFailed,
    preset_document,
    profile,
    references,
    run_dir,
    space_path,
)
from orchestrator.project.records import ContentHashes
from orchestrator.project.schema import RANDOM
from orchestrator.project.training import evaluate_search, evaluate_training, run_search, run_training


@dataclass(frozen=True)
class Stage:
    name: str
    description: str
    folder: Callable[[RunContext], Path]  # deleting it redoes the stage and those after it
    reads: Callable[[RunContext, ContentHashes], dict[str, Any]]
    run: Callable[[RunContext], dict[str, Any]]
    # Emptied before the stage is redone for a change (kept when it continues an interrupted attempt),
    # so no file of the earlier inputs is mistaken for a new one. Curation and the verdict keep theirs: a
    # person's decisions.json and votes.json live there.
    fresh: bool = True


def _section(context: RunContext, name: str) -> dict[str, Any]:
    return dict(context.project.settings[name])


def _random_clip(context: RunContext) -> bool:
    # Random CLIP scores are noise: a threshold would drop arbitrary frames. Scores are still recorded.
    return context.project.get("models", "clip_weights") == RANDOM


# --- extract, crop -------------------------------------------------------------------------------------

def extract_reads(context: RunContext, hashes: ContentHashes) -> dict[str, Any]:
    return {"films": [hashes.of_file(film) for film in context.project.films], "extract": _section(context, "extract")}


def extract_stage(context: RunContext) -> dict[str, Any]:
    from orchestrator.extract import ExtractConfig, extract_videos

    result = extract_videos(context.project.films, context.out / FRAMES,
                            ExtractConfig(per_shot=context.project.get("extract", "per_shot")),
                            progress=context.progress)
    if result.errors or not result.frames:
        raise StageFailed(f"extract gave no frames: {'; '.join(result.errors) or 'every frame was dropped'}"
                          f" (see {result.out_dir / 'summary.json'})")
    return {"films": len(context.project.films), "shots": result.shots, "frames": result.frames}


def crop_reads(context: RunContext, hashes: ContentHashes) -> dict[str, Any]:
    from orchestrator.crop import profile_queries

    models = {k: context.project.get("models", k) for k in ("detector", "segmenter", "clip_model", "clip_weights")}
    return {"references": hashes.of_folder(references(context)), "crop": _section(context, "crop"),
            "queries": list(profile_queries(profile(context))), "models": models, "device": context.device}


def crop_stage(context: RunContext) -> dict[str, Any]:
    from orchestrator.crop import CropConfig, crop_frames, load_detector, load_segmenter, profile_queries

    settings, models = _section(context, "crop"), context.models()
    threshold = -1.0 if _random_clip(context) else settings["identity_threshold"]
    config = CropConfig(queries=profile_queries(profile(context)), min_side=settings["min_side"],
                        identity_threshold=threshold)
    detector = load_detector(models.detector, cache_dir=models.tokenizer_cache_dir, device=context.device)
    segmenter = load_segmenter(models.segmenter, device=context.device) if settings["masks"] else None
    result = crop_frames(context.out / FRAMES, references(context), context.out / CROPS, detector=detector,
                         embed=context.encoder().embed_images, segmenter=segmenter, config=config,
                         progress=context.progress)
    if not result.kept:
        raise StageFailed(f"crop kept no frame: {result.summary['dropped']} (see {result.out_dir / 'manifest.jsonl'})")
    return {"crops": result.summary["crops"], "dropped": result.summary["dropped"]}


# --- curate, review ------------------------------------------------------------------------------------

def curate_reads(context: RunContext, hashes: ContentHashes) -> dict[str, Any]:
    config = context.project.get("curate", "config")
    return {"references": hashes.of_folder(references(context)), "curate": _section(context, "curate"),
            "config": hashes.of_file(context.project.path("curate", "config")) if config else None,
            "clip": [context.project.get("models", k) for k in ("clip_model", "clip_weights")]}


def curate_stage(context: RunContext) -> dict[str, Any]:
    from orchestrator.dataset.config import load_curation_config
    from orchestrator.dataset.curate import curate

    models = context.models()
    config_file = context.project.get("curate", "config")
    config = load_curation_config(context.project.path("curate", "config") if config_file else None)
    identity = replace(config.identity, threshold=context.project.get("curate", "identity_threshold"))
    if _random_clip(context):
        identity = replace(identity, threshold=-1.0, borderline_margin=0.0)
    config = replace(config, clip=replace(config.clip, model=models.clip_model, weights=models.clip_weights),
                     identity=identity)
    result = curate(context.out / CROPS, references(context), context.out / CURATION, config,
                    device=context.device, encoder=context.encoder(), progress=context.progress)
    return {"funnel": result.summary["funnel"], "counts": result.summary["counts"],
            "review": str(result.out_dir / "review.html")}


def _decisions_file(context: RunContext) -> Path:
    return context.out / CURATION / DECISIONS


def review_reads(context: RunContext, hashes: ContentHashes) -> dict[str, Any]:
    decisions = _decisions_file(context)
    return {"decisions": hashes.of_file(decisions) if decisions.is_file() else "automatic"}


def review_stage(context: RunContext) -> dict[str, Any]:
    """Apply the person's decisions, or stop and say how to give them (``--accept-automatic``: don't ask)."""
    from orchestrator.dataset.apply import apply_decisions, load_decisions

    curation, decisions_file = context.out / CURATION, _decisions_file(context)
    if decisions_file.is_file():
        decisions, source = load_decisions(decisions_file), str(decisions_file)
    elif context.accept_automatic:
        decisions, source = {}, "automatic"
    else:
        raise NeedsPerson(f"open {curation / 'review.html'}, export your decisions to {decisions_file}, then run "
                          "again (or run again with --accept-automatic to take the automatic decisions)")
    selection = apply_decisions(curation, decisions)
    if not selection.copied:
        raise StageFailed(f"no frame is kept; see {curation / 'review.html'}")
    return {"kept": len(selection.copied), "decisions": source}


# --- dataset, captions ---------------------------------------------------------------------------------

def prepare_reads(context: RunContext, hashes: ContentHashes) -> dict[str, Any]:
    return {"dataset": _section(context, "dataset"), "name": context.name}


def prepare_stage(context: RunContext) -> dict[str, Any]:
    from orchestrator.dataset import prepare_kohya_dataset

    prepared = prepare_kohya_dataset(context.out / CURATION / SELECTED, context.out / DATASET,
                                     repeats=context.project.get("dataset", "repeats"), name=context.name,
                                     overwrite=True)
    return {"images": prepared.images, "masked": prepared.masked, "folder": str(prepared.folder)}


def caption_reads(context: RunContext, hashes: ContentHashes) -> dict[str, Any]:
    return {"profile": hashes.of_file(context.project.path("inputs", "profile")),
            "caption": _section(context, "caption"), "vlm": context.project.get("models", "vlm_weights"),
            "family": context.project.get("project", "family"),  # T5 families caption in sentences
            "device": context.device}


def caption_stage(context: RunContext) -> dict[str, Any]:
    """Caption a copy of the prepared dataset (the prepared one stays caption-free for the next profile)."""
    from orchestrator.captions import caption_folder, load_qwen_backend
    from orchestrator.captions.tiny_model import TINY_MAX_PIXELS, TINY_PATCH_PIXELS
    from orchestrator.dataset import validate_kohya_dataset

    kohya = context.paths.dataset_dir
    if not context.continuing or not kohya.is_dir():
        shutil.rmtree(kohya, ignore_errors=True)
        shutil.copytree(context.out / DATASET, kohya)
    models = context.models()
    budget: dict[str, int] = {}
    if models.vlm_is_random:  # its words are noise whatever the budget: keep it quick
        budget = {"min_pixels": TINY_PATCH_PIXELS, "max_pixels": TINY_MAX_PIXELS, "max_new_tokens": 32}
    backend = load_qwen_backend("qwen2_vl", models.vlm_weights, device=context.device, **budget)
    written = failures = 0
    for subset in sorted(p for p in kohya.iterdir() if p.is_dir()):
        report = caption_folder(subset, profile(context), backend=backend,
                                batch_size=context.project.get("caption", "batch_size"), progress=context.progress,
                                family=str(context.project.get("project", "family")))
        written, failures = written + len(report.written), failures + len(report.failures)
    del backend  # the trainer needs the memory next
    check = validate_kohya_dataset(kohya)
    if not check.ok:
        raise StageFailed("the captioned dataset does not validate: " + "; ".join(str(p) for p in check.problems[:3]))
    return {"captioned": written, "failures": failures, "dataset": check.counts_line()}


# --- train or search, evaluate, verdict ----------------------------------------------------------------

def train_reads(context: RunContext, hashes: ContentHashes) -> dict[str, Any]:
    final = _section(context, "final")
    space = space_path(context) if final["mode"] == "search" else None
    return {"family": context.project.get("project", "family"), "device": context.device,
            "base_model": context.project.get("models", "base_model"), "train": _section(context, "train"),
            "preset": preset_document(context), "final": {k: final[k] for k in ("mode", "trials", "seed")},
            "space": hashes.of_file(space) if space is not None else None,
            "references": hashes.of_folder(references(context))}


def train_folder(context: RunContext) -> Path:
    return context.out / (SEARCH if context.project.get("final", "mode") == "search" else TRAINING)


def train_stage(context: RunContext) -> dict[str, Any]:
    return run_search(context) if context.project.get("final", "mode") == "search" else run_training(context)


def evaluate_reads(context: RunContext, hashes: ContentHashes) -> dict[str, Any]:
    return {"clip": [context.project.get("models", k) for k in ("clip_model", "clip_weights")],
            "references": hashes.of_folder(references(context))}


def evaluate_folder(context: RunContext) -> Path:
    if context.project.get("final", "mode") == "search":
        return context.out / SEARCH / "analysis"
    return run_dir(context) / "evaluation"


def evaluate_stage(context: RunContext) -> dict[str, Any]:
    return evaluate_search(context) if context.project.get("final", "mode") == "search" else evaluate_training(context)


def verdict_reads(context: RunContext, hashes: ContentHashes) -> dict[str, Any]:
    return {"top": context.project.get("final", "top")}


def verdict_folder(context: RunContext) -> Path:
    return train_folder(context) / "verdict" if context.project.get("final", "mode") == "search" \
        else run_dir(context) / "verdict"


def verdict_stage(context: RunContext) -> dict[str, Any]:
    """The blind comparison page of the top checkpoints: a person's verdict is the last word."""
    from orchestrator.common.errors import UserInputError
    from orchestrator.verdict import select_candidates, write_comparison_page

    source = context.out / SEARCH if context.project.get("final", "mode") == "search" else run_dir(context)
    verdict_folder(context).mkdir(parents=True, exist_ok=True)
    try:
        page = write_comparison_page(select_candidates(source, top=context.project.get("final", "top")),
                                     verdict_folder(context))
    except UserInputError as error:  # e.g. fewer than two comparable checkpoints: nothing to compare
        return {"votes_page": None, "reason": str(error)}
    return {"votes_page": str(page.page), "comparisons": page.comparisons,
            "apply_command": f"lora-pipeline votes apply {page.page.parent / 'votes.json'}"}


def _in(folder: str) -> Callable[[RunContext], Path]:
    return lambda context: context.out / folder


STAGES: tuple[Stage, ...] = (
    Stage("extract", "shots and the sharpest usable frames of each shot", _in(FRAMES), extract_reads, extract_stage),
    Stage("crop", "detector boxes, the character's chosen by identity, cut with its mask", _in(CROPS), crop_reads,
          crop_stage),
    Stage("curate", "quality, near-duplicates and identity against the references", _in(CURATION), curate_reads,
          curate_stage, fresh=False),
    Stage("review", "a person's keep/reject decisions (or the automatic ones)", _in(f"{CURATION}/{SELECTED}"),
          review_reads, review_stage, fresh=False),
    Stage("prepare", "the kept frames in kohya's folder layout", _in(DATASET), prepare_reads, prepare_stage),
    Stage("caption", "every image captioned with the VLM and the character profile", _in(CAPTIONS), caption_reads,
          caption_stage),
    Stage("train", "training with sd-scripts in tmux, or the hyperparameter search", train_folder, train_reads,
          train_stage),
    Stage("evaluate", "every checkpoint scored, the best chosen, the report", evaluate_folder, evaluate_reads,
          evaluate_stage),
    Stage("verdict", "the blind comparison page of the top checkpoints", verdict_folder, verdict_reads,
          verdict_stage, fresh=False),
)
