"""Per-sample raw measurements (no calibration yet): identity cosine, style, CLIP-T, technical, copying.

The same function measures an epoch's samples, the base model's epoch-0 samples (the floors) and the
references (the ceilings), so a floor and the value it calibrates are always computed alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from orchestrator.evaluate._config import EvaluationConfig, TechnicalSettings
from orchestrator.evaluate._rules import cosine_to_each, softmax_first
from orchestrator.vision import IdentityRule, ImageMeasures, identity_scores

#: Flags that make a sample unusable whatever its content.
BROKEN_FLAGS = frozenset({"black", "blank", "nan"})


@dataclass(frozen=True)
class ScoringContext:
    """Everything an epoch is compared with; built once per run (or once per search trial)."""

    config: EvaluationConfig
    reference_embeddings: np.ndarray  # (R, D') in the identity backbone's space; R = 0: identity not scored
    training_embeddings: np.ndarray  # (T, D); may be empty (then copying is not checked)
    training_names: tuple[str, ...]  # one per training row, for the copying report
    style_centroid: np.ndarray | None  # (D,) mean direction of the training (else reference) images
    anchor_embeddings: np.ndarray  # (1 + A, D): target anchor first, then the drift anchors


@dataclass(frozen=True)
class SampleInputs:
    """One decoded sample: its embedding row, its prompt's text embedding (None if no prompt), measures."""

    name: str
    prompt_index: int
    seed: int | None
    embedding: np.ndarray
    prompt_embedding: np.ndarray | None
    measures: ImageMeasures
    identity_embedding: np.ndarray | None = None  # DINOv2 row when that backbone is used, else None


@dataclass
class ImageScore:
    """One sample: raw measurements, then (once calibrated) the per-metric values in 0..1."""

    name: str
    prompt_index: int
    seed: int | None
    identity_similarity: float | None = None  # raw: the identity rule's cosine to the references
    identity: float | None = None  # calibrated
    style_centroid_similarity: float | None = None
    style_target_probability: float = 0.0
    style_raw: float = 0.0  # centroid part and anchor part combined, before calibration
    style: float = 0.0  # calibrated
    clip_t: float | None = None  # raw CLIP-T
    prompt_adherence: float | None = None  # calibrated
    technical: float = 0.0  # raw: the technical rules' mean (0 for a broken image)
    technical_calibrated: float = 0.0
    technical_parts: dict[str, float] = field(default_factory=dict)
    is_character: bool = False  # counted by character variety (identity and technical gates passed)
    mean_similarity_to_others: float | None = None  # among the character samples of other prompts
    nearest_training_image: str | None = None
    nearest_training_similarity: float | None = None
    copied: bool = False
    flags: list[str] = field(default_factory=list)  # "black", "blank", "copied", "nan"

    @property
    def broken(self) -> bool:
        return bool(BROKEN_FLAGS & set(self.flags))


def technical_quality(measures: ImageMeasures, settings: TechnicalSettings) -> tuple[float, dict[str, float], list[str]]:
    """(score, parts, flags) of one image; a blank or black image scores exactly 0."""
    flags = []
    if measures.mean_luminance < settings.black_luminance:
        flags.append("black")
    if measures.luminance_std < settings.blank_luminance_std:
        flags.append("blank")
    parts = {
        "sharpness": settings.sharpness.apply(math.log10(1.0 + max(0.0, measures.laplacian_variance))),
        "exposure": settings.exposure.apply(abs(measures.mean_luminance - 0.5)),
        "clipping": settings.clipping.apply(measures.dark_clipped_fraction + measures.bright_clipped_fraction),
    }
    if flags:
        return 0.0, parts, flags
    return sum(parts.values()) / len(parts), parts, flags


def stacked_embeddings(samples: list[SampleInputs]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(CLIP rows, identity rows, finite mask); non-finite rows are zeroed (and flagged by the caller)."""
    embeddings = np.stack([s.embedding for s in samples]).astype(np.float64)
    finite = np.isfinite(embeddings).all(axis=1)
    if all(s.identity_embedding is not None for s in samples):
        identity_rows = np.stack([s.identity_embedding for s in samples]).astype(np.float64)
        finite &= np.isfinite(identity_rows).all(axis=1)
        identity_rows = np.nan_to_num(identity_rows)
    else:
        identity_rows = np.nan_to_num(embeddings)
    return np.nan_to_num(embeddings), identity_rows, finite


def measure_samples(samples: list[SampleInputs], context: ScoringContext, *,
                    check_copying: bool = True) -> tuple[list[ImageScore], list[str]]:
    """Raw per-sample values and warnings (nothing calibrated, nothing aggregated)."""
    config = context.config
    warnings: list[str] = []
    images = [ImageScore(s.name, s.prompt_index, s.seed) for s in samples]
    if not samples:
        return images, warnings
    embeddings, identity_rows, finite = stacked_embeddings(samples)
    for image, ok in zip(images, finite, strict=True):
        if not ok:
            image.flags.append("nan")
    if not finite.all():
        warnings.append(f"{int((~finite).sum())} sample(s) have non-finite embeddings (NaN image?)")
    if context.reference_embeddings.shape[0]:
        rule = IdentityRule(config.identity.aggregation, k=config.identity.k)
        for image, value in zip(images, identity_scores(identity_rows, context.reference_embeddings, rule),
                                strict=True):
            image.identity_similarity = float(value)
    _style(embeddings, images, context)
    for row, (sample, image) in enumerate(zip(samples, images, strict=True)):
        if sample.prompt_embedding is not None:
            image.clip_t = float(cosine_to_each(embeddings[row], sample.prompt_embedding)[0, 0])
        image.technical, image.technical_parts, flags = technical_quality(sample.measures, config.technical)
        image.flags.extend(flags)
    if check_copying:
        _copying(embeddings, images, context, warnings)
    return images, warnings


def _style(embeddings: np.ndarray, images: list[ImageScore], context: ScoringContext) -> None:
    settings = context.config.style
    probabilities = softmax_first(cosine_to_each(embeddings, context.anchor_embeddings), settings.temperature)
    centroid_similarity = (cosine_to_each(embeddings, context.style_centroid)[:, 0]
                           if context.style_centroid is not None else None)
    for row, image in enumerate(images):
        image.style_target_probability = float(probabilities[row])
        if centroid_similarity is None:
            # No training or reference images: the anchor part alone decides.
            image.style_raw = image.style_target_probability
            continue
        image.style_centroid_similarity = float(centroid_similarity[row])
        part = settings.rule.apply(image.style_centroid_similarity)
        image.style_raw = (settings.centroid_share * part
                           + (1 - settings.centroid_share) * image.style_target_probability)


def _copying(embeddings: np.ndarray, images: list[ImageScore], context: ScoringContext,
             warnings: list[str]) -> None:
    if context.training_embeddings.shape[0] == 0:
        return
    similarity = cosine_to_each(embeddings, context.training_embeddings)
    nearest = similarity.argmax(axis=1)
    threshold = context.config.copying_similarity
    copied = []
    for row, image in enumerate(images):
        image.nearest_training_image = context.training_names[int(nearest[row])]
        image.nearest_training_similarity = float(similarity[row, nearest[row]])
        if image.nearest_training_similarity >= threshold:
            image.copied = True
            image.flags.append("copied")
            copied.append(f"{image.name} ~ {image.nearest_training_image} "
                          f"({image.nearest_training_similarity:.3f})")
    if copied:
        warnings.append(f"copying: {len(copied)} sample(s) reproduce a training image "
                        f"(similarity >= {threshold:g}): {'; '.join(copied[:5])}")


def mean_or_none(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(kept)) if kept else None
