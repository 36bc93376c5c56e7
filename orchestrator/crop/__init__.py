"""Crops of the character from film frames, chosen by identity, with optional masks (``lora-pipeline crop``).

Example (offline; a tiny random detector and CLIP, so the boxes are arbitrary)::

    from orchestrator.crop import CropConfig, build_random_owlv2, crop_frames
    from orchestrator.vision import load_clip

    encoder = load_clip("tiny-clip", "random")
    result = crop_frames("frames/", "references/", "crops/", detector=build_random_owlv2("/tmp/tok"),
                         embed=encoder.embed_images, config=CropConfig(min_side=96))
    print(result.summary["summary"])  # 15 frames → 12 crops
"""

from orchestrator.crop._crop import (
    GENERIC_QUERIES,
    MANIFEST_NAME,
    NOT_FOUND,
    SUMMARY_NAME,
    CropConfig,
    CropResult,
    crop_frames,
    profile_queries,
    score_candidates,
)
from orchestrator.crop._geometry import BUCKET_ASPECTS, Box, plan_crop
from orchestrator.crop._models import (
    Detection,
    Detector,
    OwlDetector,
    SamSegmenter,
    Segmenter,
    build_random_owlv2,
    build_random_sam,
    load_detector,
    load_segmenter,
)

__all__ = [
    "BUCKET_ASPECTS",
    "GENERIC_QUERIES",
    "MANIFEST_NAME",
    "NOT_FOUND",
    "SUMMARY_NAME",
    "Box",
    "CropConfig",
    "CropResult",
    "Detection",
    "Detector",
    "OwlDetector",
    "SamSegmenter",
    "Segmenter",
    "build_random_owlv2",
    "build_random_sam",
    "crop_frames",
    "load_detector",
    "load_segmenter",
    "plan_crop",
    "profile_queries",
    "score_candidates",
]
