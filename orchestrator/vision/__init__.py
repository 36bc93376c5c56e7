"""Shared vision core: robust image opening, technical measures, CLIP embedding + cache, identity rule.

Curation (``orchestrator.dataset``) and evaluation (``orchestrator.evaluate``) both use these and
never re-implement them. Heavy libraries (torch, open_clip, opencv) are imported inside functions,
so importing this package is cheap.

Example (runs offline in well under a second)::

    from orchestrator.vision import EmbeddingCache, IdentityRule, embed_files, identity_scores, load_clip

    encoder = load_clip("tiny-clip", "random")
    with EmbeddingCache("/tmp/cache") as cache:
        frames = embed_files(encoder, frame_paths, cache=cache, progress=False)
        refs = embed_files(encoder, reference_paths, cache=cache, progress=False)
    scores = identity_scores(frames.vectors, refs.vectors, IdentityRule("mean_top_k", k=5))
"""

from orchestrator.vision._cache import EmbeddingCache, default_cache_dir
from orchestrator.vision._clip import RANDOM_WEIGHTS, TINY_MODEL_NAME, ClipEncoder, load_clip
from orchestrator.vision._embed import EmbeddingTable, embed_files
from orchestrator.vision._identity import IdentityRule, identity_scores
from orchestrator.vision._images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    ImageDecodeError,
    list_image_files,
    list_visible_files,
    open_image_rgb,
)
from orchestrator.vision._measures import ImageMeasures, measure_image

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "RANDOM_WEIGHTS",
    "TINY_MODEL_NAME",
    "ClipEncoder",
    "EmbeddingCache",
    "EmbeddingTable",
    "IdentityRule",
    "ImageDecodeError",
    "ImageMeasures",
    "default_cache_dir",
    "embed_files",
    "identity_scores",
    "list_image_files",
    "list_visible_files",
    "load_clip",
    "measure_image",
    "open_image_rgb",
]
