"""Curation settings: one TOML file with documented defaults (``configs/curation/default.toml``).

An override file may set any subset of keys; unknown sections or keys are refused by name so a
typo never silently keeps a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from orchestrator.common.errors import UserInputError
from orchestrator.common.numbers import number_problem
from orchestrator.common.tomlfile import read_toml
from orchestrator.vision import IdentityRule


@dataclass(frozen=True)
class QualityThresholds:
    min_side: int = 256
    min_mean_luminance: float = 0.08
    max_mean_luminance: float = 0.92
    max_dark_clipped_fraction: float = 0.40
    max_bright_clipped_fraction: float = 0.40
    min_luminance_std: float = 0.03
    min_laplacian_variance: float = 40.0


@dataclass(frozen=True)
class DedupSettings:
    hash_size: int = 8
    max_hamming_distance: int = 6


@dataclass(frozen=True)
class IdentitySettings:
    threshold: float = 0.75
    rule: str = "mean_top_k"
    k: int = 5
    borderline_margin: float = 0.05

    def identity_rule(self) -> IdentityRule:
        return IdentityRule(self.rule, k=self.k)


@dataclass(frozen=True)
class ClipSettings:
    model: str = "ViT-L-14"
    weights: str = "openai"
    batch_size: int = 32
    workers: int = 2


@dataclass(frozen=True)
class ReviewSettings:
    thumbnail_side: int = 192


@dataclass(frozen=True)
class CurationConfig:
    quality: QualityThresholds = field(default_factory=QualityThresholds)
    dedup: DedupSettings = field(default_factory=DedupSettings)
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    clip: ClipSettings = field(default_factory=ClipSettings)
    review: ReviewSettings = field(default_factory=ReviewSettings)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {f.name: {k.name: getattr(getattr(self, f.name), k.name) for k in fields(getattr(self, f.name))}
                for f in fields(self)}


#: What each number can be: ``(low, high)`` (None: open). TOML reads ``nan`` and ``inf`` as floats, and a
#: fraction of 1.5 or a threshold of 2 would silently keep or drop every frame, so each is checked by name.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "quality.min_side": (1, None),
    "quality.min_mean_luminance": (0, 1), "quality.max_mean_luminance": (0, 1),
    "quality.max_dark_clipped_fraction": (0, 1), "quality.max_bright_clipped_fraction": (0, 1),
    "quality.min_luminance_std": (0, 1), "quality.min_laplacian_variance": (0, None),
    "dedup.hash_size": (2, 8),  # hashes up to 64 bits
    "dedup.max_hamming_distance": (0, 64),
    "identity.threshold": (-1, 1),  # a cosine similarity
    "identity.k": (1, None), "identity.borderline_margin": (0, 2),
    "clip.batch_size": (1, None), "clip.workers": (0, None),
    "review.thumbnail_side": (16, None),
}


def check_ranges(config: CurationConfig, *, source: Path | None = None) -> CurationConfig:
    """``config`` when every number of it is finite and in :data:`RANGES`; else the key that is not."""
    for dotted, (low, high) in RANGES.items():
        section, key = dotted.split(".")
        value = getattr(getattr(config, section), key)
        problem = number_problem(value, integer=isinstance(value, int), low=low, high=high)
        if problem is not None:
            raise UserInputError(problem, path=source, key=dotted)
    return config


def default_config_path() -> Path:
    from orchestrator.config.paths import project_root

    return project_root() / "configs" / "curation" / "default.toml"


def load_curation_config(path: str | Path | None = None) -> CurationConfig:
    """Defaults, then ``configs/curation/default.toml`` if present, then ``path`` if given."""
    config = CurationConfig()
    default = default_config_path()
    for source in ([default] if default.is_file() else []) + ([Path(path)] if path else []):
        config = merge_config(config, _read(source), source=source)
    check_ranges(config, source=Path(path) if path else default)
    try:
        config.identity.identity_rule()
    except ValueError as error:
        raise UserInputError(str(error), path=path or default, key="identity.rule") from error
    return config


def merge_config(config: CurationConfig, data: dict[str, Any], *, source: Path | None = None) -> CurationConfig:
    sections = {f.name: f for f in fields(config)}
    changes: dict[str, Any] = {}
    for section_name, values in data.items():
        if section_name not in sections:
            raise UserInputError(f"unknown section; known: {sorted(sections)}", path=source, key=section_name)
        current = getattr(config, section_name)
        if not isinstance(values, dict):
            raise UserInputError("expected a table", path=source, key=section_name)
        known = {f.name: f for f in fields(current)}
        converted: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                raise UserInputError(f"unknown key; known: {sorted(known)}", path=source, key=f"{section_name}.{key}")
            expected = type(getattr(current, key))
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
                raise UserInputError(f"expected {expected.__name__}, got {value!r}", path=source,
                                     key=f"{section_name}.{key}")
            converted[key] = value
        changes[section_name] = replace(current, **converted)
    return replace(config, **changes)


def _read(path: Path) -> dict[str, Any]:
    return read_toml(path, what="curation config")
