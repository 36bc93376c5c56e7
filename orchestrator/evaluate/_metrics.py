"""One epoch's score: calibrated metrics, their total, its bootstrap interval and the gates.

Inputs are L2-normalised embedding rows from one encoder (``_samples.py`` measures each sample) and
the run's :class:`RunCalibration`. Each metric is the mean of the per-sample calibrated values, except
character variety, a property of the set. The total is the weighted sum; it is None when a weighted
metric cannot be computed, so an incomplete epoch never wins by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from orchestrator.evaluate._bootstrap import bootstrap_interval
from orchestrator.evaluate._calibration import RunCalibration
from orchestrator.evaluate._config import METRICS, EvaluationConfig
from orchestrator.evaluate._gates import GateVerdict, sample_gates
from orchestrator.evaluate._rules import normalise_rows
from orchestrator.evaluate._samples import (
    ImageScore,
    SampleInputs,
    ScoringContext,
    mean_or_none,
    measure_samples,
    technical_quality,
)
from orchestrator.evaluate._variety import character_members, character_variety
from orchestrator.vision import IdentityRule

__all__ = ["EpochScore", "ImageScore", "SampleInputs", "ScoringContext", "rule_descriptions", "score_samples",
           "technical_quality", "weighted_total"]

#: The raw value each metric is calibrated from (the key in ``EpochScore.raw``).
RAW_KEYS = {"identity": "identity_similarity", "character_variety": "character_spread",
            "style_consistency": "style_raw", "prompt_adherence": "clip_t", "technical_quality": "technical"}


@dataclass
class EpochScore:
    epoch: int
    metrics: dict[str, float | None]  # calibrated, 0..1
    raw: dict[str, float | None]  # the un-calibrated means: identity cosine, spread, CLIP-T, ...
    total: float | None
    images: list[ImageScore]
    warnings: list[str] = field(default_factory=list)
    checkpoint: str | None = None
    interval: tuple[float, float] | None = None  # bootstrap interval of the total
    gates: list[GateVerdict] = field(default_factory=list)

    @property
    def failed_gates(self) -> tuple[str, ...]:
        return tuple(v.gate for v in self.gates if not v.passed)


def score_samples(epoch: int, samples: list[SampleInputs], context: ScoringContext,
                  calibration: RunCalibration) -> EpochScore:
    """Score one epoch's decoded samples. Warnings say what could not be scored and why."""
    config = context.config
    if not samples:
        return EpochScore(epoch, {m: None for m in METRICS}, {}, None, [], ["no decodable samples"])
    samples = sorted(samples, key=lambda s: (s.prompt_index, -1 if s.seed is None else s.seed, s.name))
    images, warnings = measure_samples(samples, context)
    for image in images:
        image.identity = calibration["identity"].apply(image.identity_similarity)
        image.style = calibration["style_consistency"].apply(image.style_raw) or 0.0
        image.prompt_adherence = calibration["prompt_adherence"].apply(image.clip_t)
        image.technical_calibrated = calibration["technical_quality"].apply(image.technical) or 0.0
    if context.reference_embeddings.shape[0] == 0:
        warnings.append("identity not scored: no reference embeddings (character variety counts every "
                        "technically sound sample)")
    rows = normalise_rows(np.nan_to_num(np.stack([s.embedding for s in samples]).astype(np.float64)))
    similarity = rows @ rows.T
    count = len(images)
    all_pairs = (float((similarity.sum() - np.trace(similarity)) / (count * (count - 1))) if count > 1 else None)
    prompts = np.array([image.prompt_index for image in images])
    mask = character_members(images, config.character_variety)
    everyone = np.arange(count)
    variety, spread, coverage = character_variety(similarity, prompts, everyone[mask], everyone,
                                                  calibration["character_variety"])
    for row in everyone[mask]:
        others = everyone[mask & (prompts != prompts[row])]
        if others.size:
            images[row].mean_similarity_to_others = float(similarity[row, others].mean())
    if spread is None:
        warnings.append(f"character variety 0: {int(mask.sum())} sample(s) are the character, from fewer than "
                        "2 different prompts")
    per_sample = _per_sample_arrays(images)
    metrics = {
        "identity": mean_or_none([i.identity for i in images]),
        "character_variety": variety,
        "style_consistency": float(np.mean(per_sample["style_consistency"])),
        "prompt_adherence": mean_or_none([i.prompt_adherence for i in images]),
        "technical_quality": float(np.mean(per_sample["technical_quality"])),
    }
    missing = [i.name for i in images if i.clip_t is None]
    if missing:
        warnings.append(f"prompt adherence skipped for {len(missing)} sample(s) with no prompt line: "
                        f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    total = weighted_total(metrics, config.weights)
    interval = None
    if total is not None:
        def total_of(drawn: np.ndarray) -> float:
            distinct = np.unique(drawn)
            resampled = {m: _mean_ignoring_nan(values[drawn], metrics[m]) for m, values in per_sample.items()}
            resampled["character_variety"] = character_variety(
                similarity, prompts, distinct[mask[distinct]], distinct, calibration["character_variety"])[0]
            return float(sum(config.weights[m] * (resampled[m] or 0.0) for m in METRICS))

        interval = bootstrap_interval(count, total_of, config.noise)
    gates = sample_gates(images, all_pairs, config.gates, copying_checked=context.training_embeddings.shape[0] > 0,
                         copying_similarity=config.copying_similarity)
    if all_pairs is not None and all_pairs >= config.gates.collapse_similarity:
        warnings.append(f"collapse: samples are near-identical (mean pairwise similarity {all_pairs:.3f} >= "
                        f"{config.gates.collapse_similarity:g})")
    bad = [f"{i.name} ({', '.join(i.flags)})" for i in images if {"black", "blank"} & set(i.flags)]
    if bad:
        warnings.append(f"black/blank samples: {', '.join(bad)}")
    raw = {
        "identity_similarity": mean_or_none([i.identity_similarity for i in images]),
        "character_spread": spread,
        "character_coverage": coverage,
        "character_samples": float(mask.sum()),
        "mean_pairwise_similarity": all_pairs,
        "style_raw": float(np.mean([i.style_raw for i in images])),
        "style_centroid_similarity": mean_or_none([i.style_centroid_similarity for i in images]),
        "style_target_probability": mean_or_none([i.style_target_probability for i in images]),
        "clip_t": mean_or_none([i.clip_t for i in images]),
        "technical": float(np.mean([i.technical for i in images])),
    }
    return EpochScore(epoch, metrics, raw, total, images, warnings, interval=interval, gates=gates)


def _per_sample_arrays(images: list[ImageScore]) -> dict[str, np.ndarray]:
    def column(values: list[float | None]) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    return {"identity": column([i.identity for i in images]),
            "style_consistency": column([i.style for i in images]),
            "prompt_adherence": column([i.prompt_adherence for i in images]),
            "technical_quality": column([i.technical_calibrated for i in images])}


def _mean_ignoring_nan(values: np.ndarray, whole: float | None) -> float | None:
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else whole


def weighted_total(metrics: dict[str, float | None], weights: dict[str, float]) -> float | None:
    """Sum of weight x metric; None when any weighted metric is missing."""
    if any(metrics.get(m) is None for m in METRICS if weights.get(m, 0.0) > 0):
        return None
    return float(sum(weights[m] * (metrics[m] or 0.0) for m in METRICS))


def rule_descriptions(config: EvaluationConfig, calibration: RunCalibration | None = None) -> dict[str, str]:
    """One line per metric saying exactly how it is computed (printed in the report and scores.json)."""
    identity = config.identity
    rule = IdentityRule(identity.aggregation, k=identity.k)
    style = config.style
    technical = config.technical
    variety = config.character_variety
    gates = config.gates

    def calibrated(metric: str) -> str:
        if calibration is None:
            return "calibrated between the run's floor and ceiling (see calibration)"
        return calibration[metric].describe()

    return {
        "identity": f"per sample raw = {rule.describe()} ({'DINOv2' if identity.backbone == 'dinov2' else 'CLIP'} "
                    f"image-image); {calibrated('identity')}; epoch = mean over samples",
        "character_variety": f"among the samples with calibrated identity >= {variety.min_identity:g} and technical "
                             f">= {variety.min_technical:g} (not black/blank): raw = 1 - mean cosine over pairs of "
                             f"different prompts; {calibrated('character_variety')}; epoch = calibrated x share of "
                             "the prompts that produced the character",
        "style_consistency": f"per sample raw = {style.centroid_share:g} x "
                             f"{style.rule.describe('cos(sample, training centroid)')} + "
                             f"{1 - style.centroid_share:g} x P(target anchor | softmax({style.temperature:g} x "
                             f"cos(sample, anchors))), target '{style.target_anchor}' vs "
                             f"{', '.join(repr(a) for a in style.drift_anchors)}; {calibrated('style_consistency')};"
                             " epoch = mean",
        "prompt_adherence": f"per sample raw = CLIP-T cos(sample, its prompt without sd-scripts options); "
                            f"{calibrated('prompt_adherence')}; epoch = mean over samples with a prompt",
        "technical_quality": f"per sample raw = 0 if blank (luminance std < {technical.blank_luminance_std:g}) or "
                             f"black (mean luminance < {technical.black_luminance:g}), else mean of sharpness "
                             f"{technical.sharpness.describe('log10(1 + Laplacian variance)')}, exposure "
                             f"{technical.exposure.describe('|mean luminance - 0.5|')}, clipping "
                             f"{technical.clipping.describe('clipped fraction')}; "
                             f"{calibrated('technical_quality')}; epoch = mean",
        "total": " + ".join(f"{config.weights[m]:g} x {m}" for m in METRICS)
                 + "; undefined when any metric is missing; interval: "
                 f"{config.noise.level:.0%} bootstrap over the samples ({config.noise.resamples} resamples)",
        "copying": f"a sample whose cosine similarity to one training image is >= {config.copying_similarity:g}",
        "gates": f"an epoch is not eligible while a clean one exists when: more than {gates.max_copied_share:.0%} "
                 f"of its samples are copies (memorisation); the loss went NaN/inf by then (loss); its samples' "
                 f"mean pairwise similarity >= {gates.collapse_similarity:g} (collapse); more than "
                 f"{gates.max_broken_share:.0%} of its samples are black, blank or not finite (broken_samples)",
        "choice": "among the eligible epochs, the earliest whose total's interval reaches the interval of the "
                  "highest total (earlier checkpoints follow prompts better and over-fit less)",
    }
