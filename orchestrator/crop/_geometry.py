"""Boxes and the crop around the character: a margin, a shape the trainer's buckets handle well, a minimum size.

Pure functions on pixel boxes ``(x0, y0, x1, y1)`` (x1/y1 exclusive), no images.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Width:height ratios of the crops. sd-scripts buckets (64 px steps around the training area) hold
#: these with almost no resizing loss; a crop of any other shape would be squeezed into the nearest one.
BUCKET_ASPECTS: tuple[float, ...] = (1.0, 4 / 5, 5 / 4, 3 / 4, 4 / 3, 2 / 3, 3 / 2)


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def clipped(self, width: int, height: int) -> Box:
        return Box(max(0.0, self.x0), max(0.0, self.y0), min(float(width), self.x1), min(float(height), self.y1))

    def grown(self, fraction: float) -> Box:
        dx, dy = self.width * fraction, self.height * fraction
        return Box(self.x0 - dx, self.y0 - dy, self.x1 + dx, self.y1 + dy)

    def as_ints(self) -> tuple[int, int, int, int]:
        return (round(self.x0), round(self.y0), round(self.x1), round(self.y1))

    def as_list(self) -> list[float]:
        return [round(v, 1) for v in (self.x0, self.y0, self.x1, self.y1)]


def _placed(center: float, size: float, limit: int) -> tuple[float, float]:
    """An interval of ``size`` centred on ``center``, shifted (never shrunk) to lie inside 0..limit."""
    start = min(max(0.0, center - size / 2), limit - size)
    return start, start + size


def plan_crop(box: Box, frame_width: int, frame_height: int, *, margin: float = 0.15, min_side: int = 256,
              aspects: tuple[float, ...] = BUCKET_ASPECTS) -> Box | None:
    """The crop for ``box``: the box plus ``margin`` of its size on every side, widened to the nearest
    bucket shape, at least ``min_side`` on its short side, inside the frame.

    Among the shapes that hold the margined box and fit the frame, the smallest wins (the least background).
    Where none fits (the character fills the frame), the largest shape that fits is used, and the
    margin is what the frame allows. ``None`` when the frame itself is smaller than ``min_side``.
    """
    if min(frame_width, frame_height) < min_side:
        return None
    wanted_w, wanted_h = box.width * (1 + 2 * margin), box.height * (1 + 2 * margin)
    holding, fitting = [], []
    for aspect in aspects:
        width, height = max(wanted_w, wanted_h * aspect), max(wanted_h, wanted_w / aspect)
        short = min(width, height)
        if short < min_side:
            width, height = width * min_side / short, height * min_side / short
        fit = min(1.0, frame_width / width, frame_height / height)
        width, height = width * fit, height * fit
        if min(width, height) < min_side - 0.5:
            continue
        (holding if fit == 1.0 else fitting).append((width * height, abs(aspect - 1.0), width, height))
    if not holding and not fitting:
        return None
    _, _, width, height = min(holding) if holding else max(fitting, key=lambda c: (c[0], -c[1]))
    center_x, center_y = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    x0, x1 = _placed(center_x, width, frame_width)
    y0, y1 = _placed(center_y, height, frame_height)
    return Box(round(x0), round(y0), round(x1), round(y1))
