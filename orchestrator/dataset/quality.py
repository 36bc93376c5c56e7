"""Technical-quality verdicts: which thresholds a frame's measures break, each with its value."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from orchestrator.dataset.config import QualityThresholds
from orchestrator.vision import ImageMeasures


@dataclass(frozen=True)
class Reason:
    """Why a frame was dropped. ``code`` is stable (counted in summary.json); ``message`` is for people."""

    code: str
    message: str
    value: float | None = None
    limit: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def quality_problems(measures: ImageMeasures, limits: QualityThresholds) -> list[Reason]:
    """Every broken threshold (empty list = acceptable). A blank frame is reported as blank only,
    not also as blurred: its missing edges follow from being blank."""
    problems: list[Reason] = []
    side = min(measures.width, measures.height)
    if side < limits.min_side:
        problems.append(Reason("too_small", f"smaller side {side}px < {limits.min_side}px", side, limits.min_side))
    if measures.luminance_std < limits.min_luminance_std:
        problems.append(_below("blank", "luminance std", measures.luminance_std, limits.min_luminance_std))
    elif measures.laplacian_variance < limits.min_laplacian_variance:
        problems.append(_below("blurry", "Laplacian variance", measures.laplacian_variance,
                               limits.min_laplacian_variance, digits=1))
    if measures.mean_luminance < limits.min_mean_luminance:
        problems.append(_below("too_dark", "mean luminance", measures.mean_luminance, limits.min_mean_luminance))
    if measures.mean_luminance > limits.max_mean_luminance:
        problems.append(_above("too_bright", "mean luminance", measures.mean_luminance, limits.max_mean_luminance))
    if measures.dark_clipped_fraction > limits.max_dark_clipped_fraction:
        problems.append(_above("crushed_blacks", "black-clipped fraction", measures.dark_clipped_fraction,
                               limits.max_dark_clipped_fraction))
    if measures.bright_clipped_fraction > limits.max_bright_clipped_fraction:
        problems.append(_above("blown_highlights", "white-clipped fraction", measures.bright_clipped_fraction,
                               limits.max_bright_clipped_fraction))
    return problems


def _below(code: str, label: str, value: float, limit: float, *, digits: int = 3) -> Reason:
    return Reason(code, f"{label} {value:.{digits}f} < {limit:g}", round(value, 6), limit)


def _above(code: str, label: str, value: float, limit: float, *, digits: int = 3) -> Reason:
    return Reason(code, f"{label} {value:.{digits}f} > {limit:g}", round(value, 6), limit)
