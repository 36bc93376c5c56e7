"""Synthetic images for tests, benchmarks and the offline quickstart (no film frames needed).

``synthetic_scene`` draws a reproducible, textured scene per seed; two seeds give images that even
a random-weight CLIP tells apart, while a resized copy of one scene embeds almost identically.
``write_bad_inputs`` writes one file of every awkward kind a frames folder may contain.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def synthetic_scene(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A textured RGB scene: gradient background, a few filled shapes, fine noise (so it is sharp)."""
    rng = np.random.default_rng(seed)
    width, height = size
    top, bottom = rng.integers(30, 225, size=(2, 3))
    ramp = np.linspace(0.0, 1.0, height)[:, None, None]
    background = (top * (1 - ramp) + bottom * ramp) * np.ones((1, width, 1))
    image = Image.fromarray(background.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 7))):
        x0, x1 = sorted(rng.integers(0, width, size=2))
        y0, y1 = sorted(rng.integers(0, height, size=2))
        box = (int(x0), int(y0), int(x1) + 8, int(y1) + 8)
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour, outline=(0, 0, 0), width=2)
        else:
            draw.rectangle(box, fill=colour, outline=(255, 255, 255), width=2)
    noise = rng.normal(0.0, 6.0, size=(height, width, 3))
    pixels = np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def blurred(image: Image.Image, radius: float = 6.0) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius))


def write_bad_inputs(folder: str | Path, *, huge_side: int = 20_000) -> dict[str, str | None]:
    """Write awkward files into ``folder``; returns file name -> expected ``ImageDecodeError.reason``
    (``None`` where the file must open fine after conversion)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    scene = synthetic_scene(1234)
    expected: dict[str, str | None] = {}

    (folder / "zero_byte.png").write_bytes(b"")
    expected["zero_byte.png"] = "empty_file"

    buffer = io.BytesIO()
    scene.save(buffer, "JPEG", quality=90)
    jpeg = buffer.getvalue()
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    expected["truncated.jpg"] = "truncated"

    png = io.BytesIO()
    scene.save(png, "PNG")
    data = bytearray(png.getvalue())
    data[60:] = np.random.default_rng(7).integers(0, 256, len(data) - 60, dtype=np.uint8).tobytes()
    (folder / "corrupt.png").write_bytes(bytes(data))
    expected["corrupt.png"] = "corrupt"

    (folder / "notes.txt").write_text("not an image\n")
    expected["notes.txt"] = "not_an_image"
    (folder / "fake.jpg").write_bytes(b"<html>this is not a jpeg</html>")
    expected["fake.jpg"] = "not_an_image"

    scene.convert("CMYK").save(folder / "cmyk.jpg", "JPEG")
    expected["cmyk.jpg"] = None
    luma16 = (np.asarray(scene.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(luma16).save(folder / "gray16.png")  # mode I;16, values up to 65535
    expected["gray16.png"] = None
    rgba = scene.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(scene.size))
    rgba.save(folder / "rgba.png")
    expected["rgba.png"] = None
    scene.convert("L").save(folder / "grayscale.png")
    expected["grayscale.png"] = None
    scene.convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "palette.gif")
    expected["palette.gif"] = None

    write_blank_png(folder / "huge.png", huge_side, huge_side)
    expected["huge.png"] = "too_large"
    return expected


def write_blank_png(path: Path, width: int, height: int) -> None:
    """A valid black 8-bit grayscale PNG of any size, streamed (never holds the pixels in memory)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    compressor = zlib.compressobj(1)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    rows_per_step = max(1, (8 << 20) // len(row))
    parts = []
    for start in range(0, height, rows_per_step):
        parts.append(compressor.compress(row * min(rows_per_step, height - start)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts))
                     + chunk(b"IEND", b""))
