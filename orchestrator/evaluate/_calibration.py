"""Floors and ceilings measured on the run's own data, so a metric's 0 and 1 mean something for *this* character.

=====================  ==============================================  ==========================================
metric                 floor (calibrated 0)                            ceiling (calibrated 1)
=====================  ==============================================  ==========================================
identity               the base model's epoch-0 samples                each reference against the others
                                                                       (leave-one-out)
character variety      identical images (spread 0)                     the spread of the references
style consistency      the base model's epoch-0 samples                the references
prompt adherence       epoch-0 samples against *other* prompts         epoch-0 samples against their own prompts
                       (CLIP-T of a mismatch)                          (the base model follows prompts)
technical quality      a blank or black image (0)                      the references
=====================  ==============================================  ==========================================

Where a floor or ceiling cannot be measured (no epoch-0 samples: training ran without
``sample_at_first``; a single reference) or the two are closer than ``[calibration] min_span``, the
metric's fixed rule from the config stands in for both ends and ``fallback`` says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from orchestrator.evaluate._config import EvaluationConfig
from orchestrator.evaluate._rules import LinearRule, cosine_to_each, mean_pairwise_cosine
from orchestrator.evaluate._samples import ImageScore, SampleInputs, mean_or_none
from orchestrator.vision import IdentityRule, identity_scores

_UNIT = LinearRule(0.0, 1.0)


@dataclass(frozen=True)
class MetricCalibration:
    metric: str
    floor: float
    ceiling: float
    floor_source: str
    ceiling_source: str
    fallback: str | None = None  # None: both ends measured on this run

    def apply(self, value: float | None) -> float | None:
        """``clamp((value - floor) / (ceiling - floor), 0, 1)``; None stays None."""
        if value is None:
            return None
        if not np.isfinite(value):
            return 0.0
        return float(min(1.0, max(0.0, (value - self.floor) / (self.ceiling - self.floor))))

    def describe(self) -> str:
        text = (f"calibrated = {LinearRule(self.floor, self.ceiling).describe('x')} with x the raw value; "
                f"floor: {self.floor_source}; ceiling: {self.ceiling_source}")
        return text + (f"; fallback: {self.fallback}" if self.fallback else "")


@dataclass(frozen=True)
class RunCalibration:
    metrics: dict[str, MetricCalibration]
    base_samples: int  # epoch-0 samples measured for the floors
    references: int

    def __getitem__(self, metric: str) -> MetricCalibration:
        return self.metrics[metric]

    def to_dict(self) -> dict[str, object]:
        return {"base_samples": self.base_samples, "references": self.references,
                "metrics": {name: asdict(value) for name, value in self.metrics.items()}}


@dataclass(frozen=True)
class _End:
    value: float | None
    source: str  # where a measured value comes from, or why there is none


def build_calibration(config: EvaluationConfig, *, base_images: list[ImageScore], base_inputs: list[SampleInputs],
                      reference_images: list[ImageScore], reference_identity_rows: np.ndarray,
                      reference_clip_rows: np.ndarray) -> RunCalibration:
    """Every metric's floor and ceiling from the base samples (measured) and the references (measured)."""
    count = reference_identity_rows.shape[0]
    no_base = "no epoch-0 samples (train with sample_at_first)"
    base = [image for image in base_images if not image.broken]
    refs = [image for image in reference_images if not image.broken]

    def base_mean(values: list[float | None], what: str) -> _End:
        value = mean_or_none(values) if base else None
        return _End(value, f"{what} of the {len(base)} base-model (epoch-0) samples" if value is not None else no_base)

    identity_ceiling = _End(None, "fewer than 2 references: no pair to compare")
    if count >= 2:
        rule = IdentityRule(config.identity.aggregation, k=config.identity.k)
        leave_one_out = [float(identity_scores(reference_identity_rows[i:i + 1],
                                               np.delete(reference_identity_rows, i, axis=0), rule)[0])
                         for i in range(count)]
        identity_ceiling = _End(float(np.mean(leave_one_out)),
                                f"mean identity of each of the {count} references against the others")
    spread_ceiling = _End(None, "fewer than 2 references: their spread is unknown")
    if reference_clip_rows.shape[0] >= 2:
        spread_ceiling = _End(1.0 - mean_pairwise_cosine(reference_clip_rows)[0],
                              f"spread (1 - mean pairwise cosine) of the {reference_clip_rows.shape[0]} references")
    reference_style = mean_or_none([i.style_raw for i in refs])
    reference_technical = mean_or_none([i.technical for i in refs])
    min_span = config.calibration_min_span
    metrics = {
        "identity": _resolve("identity", base_mean([i.identity_similarity for i in base], "mean identity"),
                             identity_ceiling, config.identity.rule, min_span),
        "character_variety": _resolve("character_variety", _End(0.0, "identical images (no spread)"),
                                      spread_ceiling, config.character_variety.rule, min_span),
        "style_consistency": _resolve(
            "style_consistency", base_mean([i.style_raw for i in base], "mean style"),
            _End(reference_style, "mean style of the references" if reference_style is not None
                 else "no readable reference"), _UNIT, min_span),
        "prompt_adherence": _resolve(
            "prompt_adherence", _mismatched_clip_t(base_inputs, base), base_mean(
                [i.clip_t for i in base], "mean CLIP-T against their own prompts"),
            config.prompt_adherence, min_span),
        "technical_quality": _resolve(
            "technical_quality", _End(0.0, "a blank or black image"),
            _End(reference_technical, "mean technical score of the references" if reference_technical is not None
                 else "no readable reference"), _UNIT, min_span),
    }
    return RunCalibration(metrics=metrics, base_samples=len(base), references=count)


def _mismatched_clip_t(inputs: list[SampleInputs], base: list[ImageScore]) -> _End:
    """Chance level of CLIP-T: each base sample against the prompts it was *not* drawn from."""
    kept = {image.name for image in base}
    texts: dict[int, np.ndarray] = {}
    for sample in inputs:
        if sample.prompt_embedding is not None:
            texts.setdefault(sample.prompt_index, sample.prompt_embedding)
    if len(texts) < 2:
        return _End(None, "fewer than 2 prompts among the epoch-0 samples" if inputs else
                    "no epoch-0 samples (train with sample_at_first)")
    values = []
    for sample in inputs:
        if sample.name not in kept or sample.prompt_embedding is None:
            continue
        others = np.stack([row for index, row in texts.items() if index != sample.prompt_index])
        values.append(float(cosine_to_each(np.nan_to_num(sample.embedding), others).mean()))
    if not values:
        return _End(None, "no usable epoch-0 sample")
    return _End(float(np.mean(values)), f"mean CLIP-T of the {len(values)} epoch-0 samples against the other "
                                        f"{len(texts) - 1} prompts")


def _resolve(metric: str, floor: _End, ceiling: _End, rule: LinearRule, min_span: float) -> MetricCalibration:
    reasons = []
    if floor.value is None:
        reasons.append(f"floor not measured ({floor.source})")
    if ceiling.value is None:
        reasons.append(f"ceiling not measured ({ceiling.source})")
    if not reasons:
        assert floor.value is not None and ceiling.value is not None
        if ceiling.value - floor.value >= max(min_span, 1e-9):
            return MetricCalibration(metric, floor.value, ceiling.value, floor.source, ceiling.source)
        reasons.append(f"measured ceiling {ceiling.value:.4f} is not above the floor {floor.value:.4f} by "
                       f"min_span {min_span:g} ({ceiling.source}; {floor.source})")
    fixed = f"the fixed rule low {rule.low:g} / high {rule.high:g}"
    return MetricCalibration(metric, rule.low, rule.high, f"fixed: {rule.low:g}", f"fixed: {rule.high:g}",
                             fallback="; ".join(reasons) + f": {fixed} is used")
