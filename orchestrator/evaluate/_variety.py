"""Character variety: how differently the *character* is drawn across prompts asking for other poses,
views and expressions.

Only samples that are the character (calibrated identity at least ``min_identity``) and technically
sound (not black/blank/non-finite, technical score at least ``min_technical``) are counted, so noise
or another character adds nothing (noise used to score *high* on the old "pose variety", being unlike
everything). Only pairs of samples of different prompts count: seeds of one prompt are not variety
of pose. The calibrated spread is multiplied by the share of the prompts that produced the character,
so an epoch that draws the character for 2 of 10 prompts cannot score as one that draws it for all.
"""

from __future__ import annotations

import numpy as np

from orchestrator.evaluate._calibration import MetricCalibration
from orchestrator.evaluate._config import VarietySettings
from orchestrator.evaluate._samples import ImageScore


def character_members(images: list[ImageScore], settings: VarietySettings) -> np.ndarray:
    """A boolean mask: which samples count as the character (and marks them ``is_character``)."""
    mask = []
    for image in images:
        sound = not image.broken and image.technical >= settings.min_technical
        looks_like = image.identity is None or image.identity >= settings.min_identity
        image.is_character = bool(sound and looks_like)
        mask.append(image.is_character)
    return np.array(mask, dtype=bool)


def character_spread(similarity: np.ndarray, prompts: np.ndarray, members: np.ndarray) -> float | None:
    """``1 - mean cosine`` over pairs of ``members`` (row indices) with different prompts; None without a pair."""
    if members.size < 2:
        return None
    block = similarity[np.ix_(members, members)]
    different = prompts[members][:, None] != prompts[members][None, :]
    if not different.any():
        return None
    return float(1.0 - block[different].mean())


def character_variety(similarity: np.ndarray, prompts: np.ndarray, members: np.ndarray, drawn: np.ndarray,
                      calibration: MetricCalibration) -> tuple[float, float | None, float]:
    """(metric, raw spread or None, prompt coverage) for the samples ``drawn`` (row indices) of which
    ``members`` are the character."""
    prompt_count = len(np.unique(prompts[drawn])) if drawn.size else 0
    coverage = len(np.unique(prompts[members])) / prompt_count if prompt_count else 0.0
    spread = character_spread(similarity, prompts, members)
    if spread is None:
        return 0.0, None, coverage
    return float((calibration.apply(spread) or 0.0) * coverage), spread, coverage
