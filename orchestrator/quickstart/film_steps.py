"""The quickstart's front: a toy film, its frames, the crops of the hero (each a thin call into
``toy``, ``extract`` and ``crop``, the code the CLI runs)."""

from __future__ import annotations

from typing import Any

from orchestrator.quickstart.state import TOY_PROFILE, QuickstartFailed, QuickstartState

#: Frames kept per shot (extract's default).
PER_SHOT = 3
#: The crop's short side: curation's minimum frame size (configs/curation/default.toml, quality.min_side).
CROP_MIN_SIDE = 256


def toy_film_step(state: QuickstartState) -> dict[str, Any]:
    from orchestrator.toy import generate_toy_film, generate_toy_references

    options = state.options
    state.film = generate_toy_film(state.out / "toy", options.film)
    state.references_dir = generate_toy_references(state.out / "toy" / "references", count=options.references,
                                                   seed=options.film.seed)
    spec = options.film
    return {"video": str(state.film.video), "shots": spec.shots * spec.repeat,
            "seconds": round(spec.shots * spec.repeat * spec.frames_per_shot / spec.fps, 2),
            "size": f"{spec.width}x{spec.height}", "references": options.references}


def extract_step(state: QuickstartState) -> dict[str, Any]:
    from orchestrator.extract import ExtractConfig, extract_videos

    assert state.film is not None
    result = extract_videos([state.film.video], state.out / "frames", ExtractConfig(per_shot=PER_SHOT),
                            progress=state.options.progress)
    if result.errors or not result.frames:
        raise QuickstartFailed(f"extract gave no frames: {'; '.join(result.errors) or 'every frame was dropped'}"
                               f" (see {result.out_dir / 'summary.json'})")
    state.frames_dir = result.out_dir
    return {"summary": result.summary_line(), "frames": result.frames, "shots": result.shots,
            "dropped": result.videos[0].drop_counts, "manifest": str(result.out_dir / "manifest.jsonl")}


def crop_step(state: QuickstartState) -> dict[str, Any]:
    from orchestrator.captions.profile import profile_from_mapping
    from orchestrator.crop import CropConfig, crop_frames, load_detector, load_segmenter, profile_queries

    assert state.models is not None and state.frames_dir is not None and state.references_dir is not None
    models, device = state.models, state.options.device
    config = CropConfig(queries=profile_queries(profile_from_mapping(TOY_PROFILE)), min_side=CROP_MIN_SIDE)
    if models.clip_weights == "random":
        # Random CLIP scores are noise: a threshold would drop arbitrary frames. Every box is scored and
        # recorded; the best-scoring one is kept. With real weights the threshold applies.
        config = CropConfig(queries=config.queries, min_side=CROP_MIN_SIDE, identity_threshold=-1.0)
    detector = load_detector(models.detector, cache_dir=models.tokenizer_cache_dir, device=device)
    segmenter = load_segmenter(models.segmenter, device=device) if state.options.masks else None
    result = crop_frames(state.frames_dir, state.references_dir, state.out / "crops", detector=detector,
                         embed=state.encoder.embed_images, segmenter=segmenter, config=config,
                         progress=state.options.progress)
    if not result.kept:
        raise QuickstartFailed(f"crop kept no frame: {result.summary['dropped']} (see {result.out_dir / 'manifest.jsonl'})")
    state.crops_dir = result.out_dir
    return {"summary": result.summary["summary"], "crops": result.summary["crops"],
            "dropped": result.summary["dropped"], "masks": result.summary["masks"],
            "detector": result.summary["detector"], "segmenter": result.summary["segmenter"]}
