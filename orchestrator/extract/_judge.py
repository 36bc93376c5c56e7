"""Per-frame measures on the reduced analysis frame, and the reasons a frame is never a training image.

The rules, in order (the first that matches is the reason):

- ``black``: mean luma below ``black_luma`` (out of 255): the film's black between scenes.
- ``flat``: luma standard deviation below ``flat_std``: a plain card, a wall, a blank frame.
- ``fade``: the brightness moves by more than ``fade_step`` per frame both into and out of the frame, in
  the same direction: a fade in or out (the frame's neighbours on both sides are needed, so each
  frame's verdict comes one frame late).
- ``frozen``: the frame repeats the previous one: fewer than ``frozen_changed`` of its pixels differ by
  more than ``frozen_level``. A held frame or a frozen stretch keeps its first copy only; a slow
  shot, where a small part of the picture moves, is not frozen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class JudgeConfig:
    black_luma: float = 16.0
    fade_step: float = 2.5
    flat_std: float = 6.0
    frozen_level: int = 12  # out of 255: above codec noise
    frozen_changed: float = 0.002  # fraction of the pixels


@dataclass(frozen=True)
class FrameMeasure:
    sharpness: float  # variance of the Laplacian on the analysis frame
    luma: float
    contrast: float  # luma standard deviation
    reason: str | None  # None: a candidate


class FrameJudge:
    """Measures each analysis frame and says why it is dropped (or ``None``).

    :meth:`push` takes a frame and returns the verdict on the *previous* one (with the payload given
    with it); :meth:`flush` returns the last. Only two frames are remembered.
    """

    def __init__(self, config: JudgeConfig | None = None) -> None:
        self.config = config or JudgeConfig()
        self._previous: np.ndarray | None = None
        self._pending: tuple[Any, float, float, float, bool, float] | None = None

    def push(self, gray: np.ndarray, payload: Any) -> tuple[Any, FrameMeasure] | None:
        import cv2

        config = self.config
        mean, std = cv2.meanStdDev(gray)
        luma, contrast = float(mean[0, 0]), float(std[0, 0])
        sharpness = float(cv2.Laplacian(gray, cv2.CV_32F).var())
        repeated = False
        if self._previous is not None:
            changed = np.count_nonzero(cv2.absdiff(gray, self._previous) > config.frozen_level)
            repeated = changed < config.frozen_changed * gray.size
        self._previous = gray
        verdict = self._verdict(next_step=luma - self._pending[2]) if self._pending else None
        step_in = luma - self._pending[2] if self._pending else 0.0
        self._pending = (payload, sharpness, luma, contrast, repeated, step_in)
        return verdict

    def flush(self) -> tuple[Any, FrameMeasure] | None:
        verdict = self._verdict(next_step=0.0) if self._pending else None
        self._pending = None
        return verdict

    def _verdict(self, *, next_step: float) -> tuple[Any, FrameMeasure]:
        assert self._pending is not None
        payload, sharpness, luma, contrast, repeated, step_in = self._pending
        config = self.config
        fading = abs(step_in) > config.fade_step and abs(next_step) > config.fade_step \
            and (step_in > 0) == (next_step > 0)
        if luma < config.black_luma:
            reason: str | None = "black"
        elif contrast < config.flat_std:
            reason = "flat"
        elif fading:
            reason = "fade"
        elif repeated:
            reason = "frozen"
        else:
            reason = None
        return payload, FrameMeasure(sharpness=sharpness, luma=luma, contrast=contrast, reason=reason)
