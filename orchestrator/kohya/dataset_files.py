"""Which files sd-scripts trains on in an image folder, where it looks for their captions, and how it
reads a mask.

sd-scripts' ``IMAGE_EXTENSIONS`` lists these suffixes in lower and upper case (``.avif``/``.jxl`` only
when optional Pillow plugins are installed, which its requirements do not include). Captioning and the
dataset checks use this one list, so every image that is trained on gets a caption.

Masks: with ``alpha_mask = true`` on a subset, sd-scripts loads each image as RGBA and weighs the loss of
every pixel by its alpha (0 ignored, 255 trained fully; ``library/train_util.py``, ``load_image`` and
``apply_masked_loss``); an image without alpha counts as fully opaque. So a mask travels as the alpha
channel of the image itself, and no second folder is needed (``conditioning_data_dir`` is the other way,
masks as separate images, which our crops do not use).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

TRAINABLE_IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
CAPTION_SUFFIX = ".txt"  # our presets' caption_extension

#: The subset key that makes sd-scripts read an image's alpha channel as its loss weight.
ALPHA_MASK_SUBSET_KEY = "alpha_mask"
#: The training argument for masked loss. ``train_network.py`` applies alpha masks whenever a batch has
#: them; the flag is written too so that training.toml says plainly that the loss is masked.
MASKED_LOSS_ARGUMENT = "masked_loss"

_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


def image_has_alpha(path: str | Path) -> bool:
    """Whether ``path`` carries an alpha channel (read from the header; the pixels are not decoded).
    ``False`` for a file Pillow cannot open: the dataset checks report those."""
    try:
        with Image.open(path) as image:
            return image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info)
    except (OSError, ValueError, SyntaxError):
        return False


def trainable_images(folder: str | Path) -> list[Path]:
    """The images sd-scripts trains on in ``folder`` (not recursive; hidden files skipped), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in TRAINABLE_IMAGE_SUFFIXES)


def masked_image_count(folder: str | Path) -> tuple[int, int]:
    """``(images with an alpha mask, images)`` in one subset folder."""
    images = trainable_images(folder)
    return sum(1 for path in images if image_has_alpha(path)), len(images)
