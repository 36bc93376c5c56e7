"""The five metrics of one epoch, computed from embeddings and image measures (no files, no models).

Inputs are L2-normalised embedding rows from one encoder: the epoch's samples, the character's
references, the training images and the style anchor texts. Each metric is the mean of per-image
values mapped to [0, 1] by the rules in :class:`EvaluationConfig` (pose variety is a property of the
set, not of one image). The total is the weighted sum; it is None when a metric cannot be computed,
so an incomplete epoch never wins by accident.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from orchestrator.evaluate._config import METRICS, EvaluationConfig, TechnicalSettings
from orchestrator.evaluate._rules import cosine_to_each, mean_pairwise_cosine, softmax_first
from orchestrator.vision import IdentityRule, ImageMeasures, identity_scores


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
    name: str
    prompt_index: int
    seed: int | None
    identity_similarity: float | None = None
    identity: float | None = None
    mean_similarity_to_others: float | None = None
    style_centroid_similarity: float | None = None
    style_target_probability: float = 0.0
    style: float = 0.0
    clip_t: float | None = None
    prompt_adherence: float | None = None
    technical: float = 0.0
    technical_parts: dict[str, float] = field(default_factory=dict)
    nearest_training_image: str | None = None
    nearest_training_similarity: float | None = None
    copied: bool = False
    flags: list[str] = field(default_factory=list)  # "black", "blank", "copied", "nan"


@dataclass
class EpochScore:
    epoch: int
    metrics: dict[str, float | None]
    raw: dict[str, float | None]  # the un-mapped means: identity cosine, pairwise similarity, CLIP-T, ...
    total: float | None
    images: list[ImageScore]
    warnings: list[str] = field(default_factory=list)
    checkpoint: str | None = None


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


def score_samples(epoch: int, samples: list[SampleInputs], context: ScoringContext) -> EpochScore:
    """Score one epoch's decoded samples. Warnings say what could not be scored and why."""
    config = context.config
    warnings: list[str] = []
    if not samples:
        return EpochScore(epoch, {m: None for m in METRICS}, {}, None, [], ["no decodable samples"])
    embeddings = np.stack([s.embedding for s in samples])
    images = [ImageScore(s.name, s.prompt_index, s.seed) for s in samples]
    finite = np.isfinite(embeddings).all(axis=1)
    for image, ok in zip(images, finite, strict=True):
        if not ok:
            image.flags.append("nan")
    if not finite.all():
        warnings.append(f"{int((~finite).sum())} sample(s) have non-finite embeddings (NaN image?)")
    embeddings = np.nan_to_num(embeddings)

    identity_rows = (np.nan_to_num(np.stack([s.identity_embedding for s in samples]))
                     if all(s.identity_embedding is not None for s in samples) else embeddings)
    identity_metric = _identity(identity_rows, images, context, warnings)
    variety_metric, mean_similarity = _variety(embeddings, images, context, warnings)
    _style(embeddings, images, context)
    adherence_metric, mean_clip_t = _adherence(samples, embeddings, images, context, warnings)
    for sample, image in zip(samples, images, strict=True):
        image.technical, image.technical_parts, flags = technical_quality(sample.measures, config.technical)
        image.flags.extend(flags)
    _copying(embeddings, images, context, warnings)
    bad = [f"{i.name} ({', '.join(i.flags)})" for i in images if {"black", "blank"} & set(i.flags)]
    if bad:
        warnings.append(f"black/blank samples: {', '.join(bad)}")
    metrics = {
        "identity": identity_metric,
        "pose_variety": variety_metric,
        "style_consistency": float(np.mean([i.style for i in images])),
        "prompt_adherence": adherence_metric,
        "technical_quality": float(np.mean([i.technical for i in images])),
    }
    raw = {
        "identity_similarity": _mean([i.identity_similarity for i in images]),
        "mean_pairwise_similarity": mean_similarity,
        "style_centroid_similarity": _mean([i.style_centroid_similarity for i in images]),
        "style_target_probability": _mean([i.style_target_probability for i in images]),
        "clip_t": mean_clip_t,
    }
    return EpochScore(epoch, metrics, raw, weighted_total(metrics, config.weights), images, warnings)


def weighted_total(metrics: dict[str, float | None], weights: dict[str, float]) -> float | None:
    """Sum of weight x metric; None when any weighted metric is missing."""
    if any(metrics.get(m) is None for m in METRICS if weights.get(m, 0.0) > 0):
        return None
    return float(sum(weights[m] * (metrics[m] or 0.0) for m in METRICS))


def _identity(embeddings: np.ndarray, images: list[ImageScore], context: ScoringContext,
              warnings: list[str]) -> float | None:
    settings = context.config.identity
    if context.reference_embeddings.shape[0] == 0:
        warnings.append("identity not scored: no reference embeddings")
        return None
    rule = IdentityRule(settings.aggregation, k=settings.k)
    similarities = identity_scores(embeddings, context.reference_embeddings, rule)
    for image, value in zip(images, similarities, strict=True):
        image.identity_similarity = float(value)
        image.identity = settings.rule.apply(float(value))
    return float(np.mean([i.identity for i in images]))


def _variety(embeddings: np.ndarray, images: list[ImageScore], context: ScoringContext,
             warnings: list[str]) -> tuple[float | None, float | None]:
    settings = context.config.pose_variety
    mean_similarity, per_image = mean_pairwise_cosine(embeddings)
    if not math.isfinite(mean_similarity):
        warnings.append("pose variety not scored: fewer than 2 samples")
        return None, None
    for image, value in zip(images, per_image, strict=True):
        image.mean_similarity_to_others = float(value)
    if mean_similarity >= settings.collapse_similarity:
        warnings.append(f"collapse: samples are near-identical (mean pairwise similarity "
                        f"{mean_similarity:.3f} >= {settings.collapse_similarity:g})")
    return settings.rule.apply(1.0 - mean_similarity), mean_similarity


def _style(embeddings: np.ndarray, images: list[ImageScore], context: ScoringContext) -> None:
    settings = context.config.style
    probabilities = softmax_first(cosine_to_each(embeddings, context.anchor_embeddings), settings.temperature)
    centroid_similarity = (cosine_to_each(embeddings, context.style_centroid)[:, 0]
                           if context.style_centroid is not None else None)
    for row, image in enumerate(images):
        image.style_target_probability = float(probabilities[row])
        if centroid_similarity is None:
            # No training or reference images: the anchor part alone decides.
            image.style = image.style_target_probability
            continue
        image.style_centroid_similarity = float(centroid_similarity[row])
        part = settings.rule.apply(image.style_centroid_similarity)
        image.style = settings.centroid_share * part + (1 - settings.centroid_share) * image.style_target_probability


def _adherence(samples: list[SampleInputs], embeddings: np.ndarray, images: list[ImageScore],
               context: ScoringContext, warnings: list[str]) -> tuple[float | None, float | None]:
    rule = context.config.prompt_adherence
    values = []
    for row, (sample, image) in enumerate(zip(samples, images, strict=True)):
        if sample.prompt_embedding is None:
            continue
        image.clip_t = float(cosine_to_each(embeddings[row], sample.prompt_embedding)[0, 0])
        image.prompt_adherence = rule.apply(image.clip_t)
        values.append((image.clip_t, image.prompt_adherence))
    missing = [i.name for i in images if i.clip_t is None]
    if missing:
        warnings.append(f"prompt adherence skipped for {len(missing)} sample(s) with no prompt line: "
                        f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    if not values:
        return None, None
    return float(np.mean([v[1] for v in values])), float(np.mean([v[0] for v in values]))


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


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def rule_descriptions(config: EvaluationConfig) -> dict[str, str]:
    """One line per metric saying exactly how it is computed (printed in the report and scores.json)."""
    identity = config.identity
    rule = IdentityRule(identity.aggregation, k=identity.k)
    style = config.style
    technical = config.technical
    return {
        "identity": f"per sample x = {rule.describe()} ({'DINOv2' if identity.backbone == 'dinov2' else 'CLIP'} "
                    f"image-image); score = "
                    f"{identity.rule.describe('x')}; epoch = mean over samples",
        "pose_variety": f"x = 1 - mean pairwise cosine similarity of the epoch's samples; score = "
                        f"{config.pose_variety.rule.describe('x')}; collapse warning when the mean similarity "
                        f">= {config.pose_variety.collapse_similarity:g}",
        "style_consistency": f"per sample {style.centroid_share:g} x {style.rule.describe('cos(sample, training centroid)')}"
                             f" + {1 - style.centroid_share:g} x P(target anchor | softmax({style.temperature:g} x "
                             f"cos(sample, anchors))), target '{style.target_anchor}' vs "
                             f"{', '.join(repr(a) for a in style.drift_anchors)}; epoch = mean",
        "prompt_adherence": f"per sample x = CLIP-T cos(sample, its prompt without sd-scripts options); score = "
                            f"{config.prompt_adherence.describe('x')}; epoch = mean over samples with a prompt",
        "technical_quality": f"per sample 0 if blank (luminance std < {technical.blank_luminance_std:g}) or black "
                             f"(mean luminance < {technical.black_luminance:g}), else mean of sharpness "
                             f"{technical.sharpness.describe('log10(1 + Laplacian variance)')}, exposure "
                             f"{technical.exposure.describe('|mean luminance - 0.5|')}, clipping "
                             f"{technical.clipping.describe('clipped fraction')}; epoch = mean",
        "total": " + ".join(f"{config.weights[m]:g} x {m}" for m in METRICS)
                 + "; undefined when any metric is missing",
        "copying": f"a sample whose cosine similarity to one training image is >= {config.copying_similarity:g}",
    }
