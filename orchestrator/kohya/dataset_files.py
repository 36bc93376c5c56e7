"""Which files sd-scripts trains on in an image folder, and where it looks for their captions.

sd-scripts' ``IMAGE_EXTENSIONS`` lists these suffixes in lower and upper case (``.avif``/``.jxl`` only
when optional Pillow plugins are installed, which its requirements do not include). Captioning and the
dataset checks use this one list, so every image that is trained on gets a caption.
"""

TRAINABLE_IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
CAPTION_SUFFIX = ".txt"  # our presets' caption_extension
