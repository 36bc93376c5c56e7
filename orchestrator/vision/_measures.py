"""Per-image technical measures: exposure, clipping, sharpness, blankness, size.

Curation rejects frames with them and evaluation scores sample images with them, so they are
defined once here. Exposure and sharpness are measured on a copy whose long side is at most
``analysis_side`` pixels (area resampling): values then compare across resolutions, and a 4k frame
costs what a 512 px one does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

#: Luma at or below this (0..255) counts as crushed black; at or above the bright one, blown white.
DARK_CLIP_LEVEL = 5
BRIGHT_CLIP_LEVEL = 250
DEFAULT_ANALYSIS_SIDE = 512


@dataclass(frozen=True)
class ImageMeasures:
    """Measures of one image. Luminance values are in 0..1 (Rec. 601 luma / 255).

    ``laplacian_variance`` is the variance of the 3x3 Laplacian of the 0..255 luma (the usual
    "variance of the Laplacian" focus measure): low = blurred or flat.
    ``luminance_std`` near 0 = a blank (single-colour) frame.
    """

    width: int
    height: int
    mean_luminance: float
    luminance_std: float
    dark_clipped_fraction: float
    bright_clipped_fraction: float
    laplacian_variance: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def measure_image(image: Image.Image, *, analysis_side: int = DEFAULT_ANALYSIS_SIDE) -> ImageMeasures:
    """Measure an RGB (or any-mode) ``PIL.Image``; see :class:`ImageMeasures` for the definitions."""
    import cv2  # imported here: opencv is an optional ("ml") dependency

    width, height = image.size
    gray = image.convert("L")
    long_side = max(width, height)
    if long_side > analysis_side:
        scale = analysis_side / long_side
        gray = gray.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BOX)
    luma = np.asarray(gray, dtype=np.uint8)
    laplacian = cv2.Laplacian(luma, cv2.CV_64F, ksize=1)
    count = float(luma.size)
    return ImageMeasures(
        width=width,
        height=height,
        mean_luminance=float(luma.mean()) / 255.0,
        luminance_std=float(luma.std()) / 255.0,
        dark_clipped_fraction=float(np.count_nonzero(luma <= DARK_CLIP_LEVEL)) / count,
        bright_clipped_fraction=float(np.count_nonzero(luma >= BRIGHT_CLIP_LEVEL)) / count,
        laplacian_variance=float(laplacian.var()),
    )
