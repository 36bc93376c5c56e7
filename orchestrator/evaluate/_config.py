"""The evaluation settings (``configs/evaluation/default.toml``) as typed, validated objects.

The TOML file is the single place the default numbers are written: a user file passed with
``--config`` is laid over it key by key, unknown keys are refused, and the weights must add up to 1.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.common.errors import UserInputError
from orchestrator.common.tomlfile import read_toml
from orchestrator.evaluate._rules import LinearRule

METRICS: tuple[str, ...] = (
    "identity", "character_variety", "style_consistency", "prompt_adherence", "technical_quality")
METRIC_TITLES = {
    "identity": "identity",
    "character_variety": "character variety",
    "pose_variety": "pose variety (old metric)",  # scores.json of schema 1 still shows in report/compare
    "style_consistency": "style consistency",
    "prompt_adherence": "prompt adherence",
    "technical_quality": "technical quality",
}
_WEIGHT_TOLERANCE = 1e-6
IDENTITY_BACKBONES = ("clip", "dinov2")
TRAINING_OVERLAP_ACTIONS = ("exclude", "warn", "refuse")
#: Settings renamed since an earlier release: a user file that still uses one gets told the new name.
RENAMED = {"pose_variety": "character_variety (variety among the samples that are the character)"}


@dataclass(frozen=True)
class ClipSettings:
    model: str
    weights: str
    batch_size: int


@dataclass(frozen=True)
class IdentitySettings:
    backbone: str  # "clip" | "dinov2"
    dino_weights: str
    aggregation: str
    k: int
    rule: LinearRule


@dataclass(frozen=True)
class VarietySettings:
    rule: LinearRule  # stands in for the reference spread when it cannot be measured
    min_identity: float  # calibrated identity a sample needs to count as the character
    min_technical: float


@dataclass(frozen=True)
class GateSettings:
    max_copied_share: float
    collapse_similarity: float
    max_broken_share: float


@dataclass(frozen=True)
class NoiseSettings:
    resamples: int
    level: float
    seed: int


@dataclass(frozen=True)
class ReferenceSettings:
    training_overlap: str  # "exclude" | "warn" | "refuse"
    near_duplicate_bits: int


@dataclass(frozen=True)
class StyleSettings:
    centroid_share: float
    rule: LinearRule
    temperature: float
    target_anchor: str
    drift_anchors: tuple[str, ...]


@dataclass(frozen=True)
class TechnicalSettings:
    blank_luminance_std: float
    black_luminance: float
    sharpness: LinearRule
    exposure: LinearRule
    clipping: LinearRule


@dataclass(frozen=True)
class EvaluationConfig:
    weights: dict[str, float]
    clip: ClipSettings
    identity: IdentitySettings
    character_variety: VarietySettings
    style: StyleSettings
    prompt_adherence: LinearRule
    technical: TechnicalSettings
    copying_similarity: float
    gates: GateSettings
    calibration_min_span: float
    noise: NoiseSettings
    references: ReferenceSettings
    require_checkpoint: bool
    source: str  # the file(s) it was read from, for the report
    raw: dict[str, Any]  # the merged TOML, printed in the report


_DEFAULT_RELATIVE = Path("configs") / "evaluation" / "default.toml"


def default_config_path() -> Path:
    """The project's own defaults; a project folder (``$LORA_PIPELINE_HOME``) without them uses the ones
    shipped beside this package, so that pointing the tool at another folder never loses the defaults."""
    from orchestrator.config.paths import project_root

    project = project_root() / _DEFAULT_RELATIVE
    shipped = Path(__file__).resolve().parents[2] / _DEFAULT_RELATIVE
    return project if project.is_file() or not shipped.is_file() else shipped


def load_evaluation_config(path: str | Path | None = None) -> EvaluationConfig:
    """The default settings, with ``path`` (if given) laid over them; raises UserInputError on bad values."""
    default_path = default_config_path()
    merged = _read(default_path)
    source = str(default_path)
    if path is not None:
        _overlay(merged, _read(Path(path)), Path(path), prefix="")
        source += f" + {path}"
    return config_from_dict(merged, source=source, path=Path(path) if path else default_path)


def config_from_dict(data: dict[str, Any], *, source: str, path: Path | None = None) -> EvaluationConfig:
    """Build and validate the settings from a complete dict with the layout of ``default.toml``."""

    def get(section: str, key: str) -> Any:
        try:
            return data[section][key]
        except KeyError:
            raise UserInputError("missing setting", path=path, key=f"{section}.{key}") from None

    def number(section: str, key: str) -> float:
        value = get(section, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UserInputError(f"expected a finite number, got {value!r}", path=path, key=f"{section}.{key}")
        return float(value)

    def rule(section: str, low: str = "low", high: str = "high") -> LinearRule:
        try:
            return LinearRule(number(section, low), number(section, high))
        except ValueError as error:
            raise UserInputError(str(error), path=path, key=f"{section}.{low}") from error

    def fraction(section: str, key: str) -> float:
        value = number(section, key)
        if not 0.0 <= value <= 1.0:
            raise UserInputError("must be within 0..1", path=path, key=f"{section}.{key}")
        return value

    def integer(section: str, key: str, minimum: int) -> int:
        value = get(section, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise UserInputError(f"expected an integer >= {minimum}", path=path, key=f"{section}.{key}")
        return value

    unknown = sorted(set(data.get("weights", {})) - set(METRICS))
    if unknown:
        renamed = f" ({unknown[0]} is now {RENAMED[unknown[0]]})" if unknown[0] in RENAMED else ""
        raise UserInputError(f"unknown metric {unknown[0]!r}{renamed}; metrics: {', '.join(METRICS)}",
                             path=path, key=f"weights.{unknown[0]}")
    weights = {metric: number("weights", metric) for metric in METRICS}
    if any(value < 0 for value in weights.values()):
        raise UserInputError("weights must not be negative", path=path, key="weights")
    total = sum(weights.values())
    if abs(total - 1.0) > _WEIGHT_TOLERANCE:
        raise UserInputError(f"weights add up to {total:.6g}, not 1", path=path, key="weights",
                             hint=", ".join(f"{m}={w:g}" for m, w in weights.items()))
    share = number("style_consistency", "centroid_share")
    if not 0.0 <= share <= 1.0:
        raise UserInputError("must be within 0..1", path=path, key="style_consistency.centroid_share")
    drift = get("style_consistency", "drift_anchors")
    if not isinstance(drift, list) or not drift or not all(isinstance(t, str) and t for t in drift):
        raise UserInputError("expected a non-empty list of texts", path=path,
                             key="style_consistency.drift_anchors")
    k = get("identity", "k")
    if not isinstance(k, int) or k < 1:
        raise UserInputError("expected an integer >= 1", path=path, key="identity.k")
    backbone = get("identity", "backbone")
    if backbone not in IDENTITY_BACKBONES:
        raise UserInputError(f"unknown backbone {backbone!r}; known: {', '.join(IDENTITY_BACKBONES)}",
                             path=path, key="identity.backbone")
    overlap = get("references", "training_overlap")
    if overlap not in TRAINING_OVERLAP_ACTIONS:
        raise UserInputError(f"expected one of {', '.join(TRAINING_OVERLAP_ACTIONS)}, got {overlap!r}",
                             path=path, key="references.training_overlap")
    batch = get("clip", "batch_size")
    if not isinstance(batch, int) or batch < 1:
        raise UserInputError("expected an integer >= 1", path=path, key="clip.batch_size")
    return EvaluationConfig(
        weights=weights,
        clip=ClipSettings(model=str(get("clip", "model")), weights=str(get("clip", "weights")), batch_size=batch),
        identity=IdentitySettings(backbone=backbone, dino_weights=str(get("identity", "dino_weights")),
                                  aggregation=str(get("identity", "aggregation")), k=k, rule=rule("identity")),
        character_variety=VarietySettings(rule=rule("character_variety"),
                                          min_identity=fraction("character_variety", "min_identity"),
                                          min_technical=fraction("character_variety", "min_technical")),
        style=StyleSettings(
            centroid_share=share,
            rule=rule("style_consistency"),
            temperature=number("style_consistency", "temperature"),
            target_anchor=str(get("style_consistency", "target_anchor")),
            drift_anchors=tuple(drift),
        ),
        prompt_adherence=rule("prompt_adherence"),
        technical=TechnicalSettings(
            blank_luminance_std=number("technical_quality", "blank_luminance_std"),
            black_luminance=number("technical_quality", "black_luminance"),
            sharpness=rule("technical_quality", "sharpness_low", "sharpness_high"),
            exposure=rule("technical_quality", "exposure_low", "exposure_high"),
            clipping=rule("technical_quality", "clipping_low", "clipping_high"),
        ),
        copying_similarity=number("copying", "similarity"),
        gates=GateSettings(max_copied_share=fraction("gates", "max_copied_share"),
                           collapse_similarity=number("gates", "collapse_similarity"),
                           max_broken_share=fraction("gates", "max_broken_share")),
        calibration_min_span=number("calibration", "min_span"),
        noise=NoiseSettings(resamples=integer("noise", "resamples", 1), level=_level(number("noise", "level"), path),
                            seed=integer("noise", "seed", 0)),
        references=ReferenceSettings(training_overlap=overlap,
                                     near_duplicate_bits=integer("references", "near_duplicate_bits", 0)),
        require_checkpoint=bool(get("best", "require_checkpoint")),
        source=source,
        raw=copy.deepcopy(data),
    )


def with_overrides(config: EvaluationConfig, changes: dict[str, dict[str, Any]]) -> EvaluationConfig:
    """A copy of ``config`` with ``{section: {key: value}}`` laid over it (validated again)."""
    merged = copy.deepcopy(config.raw)
    _overlay(merged, changes, None, prefix="")
    return config_from_dict(merged, source=config.source + " + overrides")


def _level(value: float, path: Path | None) -> float:
    if not 0.0 < value < 1.0:
        raise UserInputError("an interval level must be strictly between 0 and 1 (e.g. 0.9)", path=path,
                             key="noise.level")
    return value


def _read(path: Path) -> dict[str, Any]:
    return read_toml(path, what="evaluation config")


def _overlay(base: dict[str, Any], extra: dict[str, Any], path: Path | None, prefix: str) -> None:
    for key, value in extra.items():
        if key not in base:
            renamed = f" ({key} is now {RENAMED[key]})" if key in RENAMED else ""
            raise UserInputError(f"unknown setting{renamed}; known here: {', '.join(sorted(base))}",
                                 path=path, key=prefix + key)
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise UserInputError("expected a table", path=path, key=prefix + key)
            _overlay(base[key], value, path, prefix=f"{prefix}{key}.")
        else:
            base[key] = value
