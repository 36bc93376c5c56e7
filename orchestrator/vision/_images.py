"""Open any image file a frames folder may hold as an 8-bit RGB ``PIL.Image``, or say why not.

Film frame dumps and hand-collected references contain everything: CMYK JPEGs from print tools,
16-bit PNGs from compositing, RGBA screenshots, grayscale stills, half-copied files and the odd
``notes.txt``. Every stage that reads pixels goes through :func:`open_image_rgb`, so each of those
cases is handled once, and a file that cannot be used raises :class:`ImageDecodeError` whose
``reason`` is a short stable code (for manifests) and whose message says what is wrong.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from orchestrator.common.errors import UserInputError

#: Suffixes treated as images when a folder is scanned (case-insensitive).
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
)

#: Default pixel budget: 64 Mpx (8k x 8k). A 20k x 20k "frame" needs 1.2 GB decoded; real film
#: frames are at most 4k. Larger files are refused before decoding (a decompression-bomb guard).
DEFAULT_MAX_PIXELS = 64_000_000

# Background for transparent pixels: white, the usual sheet a character cut-out sits on.
_TRANSPARENT_BACKGROUND = (255, 255, 255)


class ImageDecodeError(UserInputError):
    """A file that cannot be used as an image.

    ``reason`` is one of ``"missing"``, ``"empty_file"``, ``"not_an_image"``, ``"too_large"``,
    ``"truncated"``, ``"corrupt"``, ``"unsupported_mode"``.
    """

    def __init__(self, reason: str, message: str, *, path: str | Path) -> None:
        self.reason = reason
        self.detail = message  # the message without the path, for records that carry the path anyway
        super().__init__(message, path=path)


def open_image_rgb(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``path`` fully and return it as an 8-bit ``RGB`` image, EXIF rotation applied.

    CMYK, palette, grayscale, 16-bit and float images are converted (16-bit scaled, not clipped);
    transparency is composited over white. Raises :class:`ImageDecodeError` for a missing, empty,
    non-image, truncated, corrupt or larger-than-``max_pixels`` file. The file is only read.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError as error:
        raise ImageDecodeError("missing", "file not found", path=path) from error
    if size == 0:
        raise ImageDecodeError("empty_file", "zero-byte file, not an image", path=path)
    with warnings.catch_warnings():
        # Our own pixel budget decides; Pillow's bomb *warning* would only add noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageDecodeError(
                        "too_large",
                        f"{width}x{height} = {width * height / 1e6:.0f} Mpx exceeds the "
                        f"{max_pixels / 1e6:.0f} Mpx limit (decompression-bomb guard); downscale it first",
                        path=path,
                    )
                image.load()
                return _to_rgb(ImageOps.exif_transpose(image), path)
        except ImageDecodeError:
            raise
        except Image.DecompressionBombError as error:
            raise ImageDecodeError("too_large", f"refused by Pillow's decompression-bomb guard ({error}); "
                                   "downscale it first", path=path) from error
        except UnidentifiedImageError as error:
            raise ImageDecodeError("not_an_image", "not a readable image format", path=path) from error
        except OSError as error:
            if "truncated" in str(error).lower():
                raise ImageDecodeError("truncated", f"truncated image data ({error})", path=path) from error
            raise ImageDecodeError("corrupt", f"corrupt image data ({error})", path=path) from error
        except (ValueError, SyntaxError, IndexError, EOFError) as error:
            # Pillow's plugins raise these for malformed headers and chunks.
            raise ImageDecodeError("corrupt", f"corrupt image data ({error})", path=path) from error


def _to_rgb(image: Image.Image, path: Path) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, _TRANSPARENT_BACKGROUND)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_high_depth_to_uint8(np.asarray(image), mode), mode="L").convert("RGB")
    if mode in ("L", "1", "P", "CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa"):
        return image.convert("RGB")
    raise ImageDecodeError("unsupported_mode", f"unsupported pixel mode {mode!r}", path=path)


def _high_depth_to_uint8(pixels: np.ndarray, mode: str) -> np.ndarray:
    """Scale 16-bit / 32-bit / float luminance into 0..255 (Pillow's own convert clips at 255)."""
    values = pixels.astype(np.float64)
    if mode == "F":
        top = 1.0 if values.size and float(np.nanmax(values)) <= 1.0 else 255.0
    elif mode.startswith("I;16") or (values.size and float(values.max()) > 255):
        top = 65535.0
    else:
        top = 255.0
    scaled = np.nan_to_num(values / top * 255.0, nan=0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def list_image_files(folder: str | Path, *, recursive: bool = True) -> list[Path]:
    """Image files (by suffix) under ``folder``, sorted by path; hidden files and folders skipped."""
    return [p for p in list_visible_files(folder, recursive=recursive) if p.suffix.lower() in IMAGE_SUFFIXES]


def list_visible_files(folder: str | Path, *, recursive: bool = True) -> list[Path]:
    """Every regular, non-hidden file under ``folder``, sorted (film frame order for numbered names)."""
    folder = Path(folder)
    pattern = "**/*" if recursive else "*"
    found = []
    for candidate in folder.glob(pattern):
        relative = candidate.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if candidate.is_file():
            found.append(candidate)
    return sorted(found)
