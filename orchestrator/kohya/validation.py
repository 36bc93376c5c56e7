"""sd-scripts' validation split and validation loss, as facts the rest of the pipeline can ask about.

How sd-scripts (pinned commit) holds images out, read from ``library/train_util.py``:

- ``validation_split`` and ``validation_seed`` are dataset-level keys of ``--dataset_config`` (general or
  ``[[datasets]]``; not subset) and also command-line arguments, which the dataset keys override.
- Each non-regularisation subset is split on its own. Its images are listed by ``glob_images``
  (``IMAGE_EXTENSIONS`` in lower and upper case, de-duplicated, sorted by path), shuffled by
  ``random.seed(validation_seed); random.shuffle(...)`` (the global state is restored after), and then
  training takes ``paths[:ceil(n * (1 - split))]`` and validation ``paths[n - round(n * split):]``.
- With ``validation_seed`` the split is therefore **reproducible**: this module recomputes it with the
  same Python calls instead of choosing images itself. Without a seed sd-scripts shuffles with whatever
  state the global RNG is in, so the held-out images cannot be known afterwards: the renderer always
  writes a seed when validation is on.
- The two slices are computed separately: whenever ``n * split`` has a fraction above one half (8 images
  at 0.1: training takes ``ceil(7.2) = 8``, validation ``8 - round(0.8) = 7`` onwards) one image lands
  in **both** sets. Such an image is a training image; :attr:`ValidationSplit.held_out` holds only the
  images training never sees, and :func:`exact_share` gives a share that splits a folder cleanly.
- The validation loss of an epoch is the mean over every validation batch (``num_repeats`` included) at
  four fixed timesteps (200, 400, 600, 800 of 1000) with noise drawn from ``validation_seed``: forward
  passes only, no sampling. ``max_validation_steps`` would cut that to the first batches, and with data
  loader workers the batches are reshuffled every epoch, so a capped validation would average other images
  each epoch; the pipeline never renders it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: sd-scripts' ``IMAGE_EXTENSIONS`` (``.avif`` only with the optional pillow_avif plugin, not in its
#: requirements): matched case-sensitively by ``glob``, in lower and upper case.
_GLOB_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".PNG", ".JPG", ".JPEG", ".WEBP", ".BMP")

SPLIT_KEY = "validation_split"
SEED_KEY = "validation_seed"
EVERY_N_EPOCHS_KEY = "validate_every_n_epochs"
MAX_STEPS_KEY = "max_validation_steps"
#: Timesteps of one validation batch (``NUM_VALIDATION_TIMESTEPS`` in train_network.py).
PASSES_PER_BATCH = 4


@dataclass(frozen=True)
class ValidationSplit:
    """One subset's images as sd-scripts splits them."""

    training: tuple[Path, ...]
    validation: tuple[Path, ...]

    @property
    def held_out(self) -> tuple[Path, ...]:
        """Validation images training never sees (the fair ones)."""
        trained = set(self.training)
        return tuple(path for path in self.validation if path not in trained)

    @property
    def in_both(self) -> tuple[Path, ...]:
        """Images sd-scripts' rounding puts in both sets (validated on, but also trained on)."""
        trained = set(self.training)
        return tuple(path for path in self.validation if path in trained)


def sd_scripts_image_list(folder: Path) -> list[Path]:
    """The images of ``folder`` in the order ``glob_images`` returns them (sorted path strings)."""
    if not folder.is_dir():
        return []
    # glob's "*" skips dot-files; the set mirrors sd-scripts' de-duplication.
    names = {str(path) for path in folder.iterdir()
             if path.suffix in _GLOB_SUFFIXES and not path.name.startswith(".") and path.is_file()}
    return [Path(name) for name in sorted(names)]


def split_images(paths: Sequence[Path], split: float, seed: int) -> ValidationSplit:
    """``split_train_val`` of sd-scripts for one subset with a seed (pure; the global RNG is untouched).

    >>> images = [Path(f"/d/{i}.png") for i in range(4)]
    >>> [p.name for p in split_images(images, 0.25, 1).validation]
    ['1.png']
    """
    if split <= 0.0 or not paths:
        return ValidationSplit(tuple(paths), ())
    shuffled = [str(path) for path in paths]
    random.Random(seed).shuffle(shuffled)  # the same Mersenne Twister stream as random.seed(seed)
    count = len(shuffled)
    training = shuffled[:math.ceil(count * (1 - split))]
    validation = shuffled[count - round(count * split):]
    return ValidationSplit(tuple(map(Path, training)), tuple(map(Path, validation)))


def exact_share(count: int, share: float) -> float:
    """A ``validation_split`` near ``share`` that holds ``max(1, int(count * share))`` of ``count`` images
    out with none in both sets: ``count * split`` then has a fraction of a quarter, far from ``ceil``'s and
    ``round``'s edges."""
    held = max(1, int(count * share))
    return round((held + 0.25) / count, 6)


@dataclass(frozen=True)
class ValidationSettings:
    split: float
    seed: int | None

    @property
    def enabled(self) -> bool:
        return self.split > 0.0


def dataset_validation_settings(dataset_block: Mapping[str, Any], general: Mapping[str, Any],
                                arguments: Mapping[str, Any]) -> ValidationSettings:
    """The split and seed one ``[[datasets]]`` block trains with: dataset, then general, then the
    command line (``--config_file`` values), then sd-scripts' default (no split)."""
    def lookup(key: str) -> Any:
        for table in (dataset_block, general, arguments):
            if table.get(key) is not None:
                return table[key]
        return None

    split, seed = lookup(SPLIT_KEY), lookup(SEED_KEY)
    return ValidationSettings(float(split) if isinstance(split, (int, float)) and not isinstance(split, bool)
                              else 0.0, int(seed) if isinstance(seed, int) and not isinstance(seed, bool) else None)


@dataclass(frozen=True)
class DatasetValidation:
    """What the validation split of a rendered dataset config means for its images."""

    held_out: tuple[Path, ...] = ()  # validated on, never trained on
    in_both: tuple[Path, ...] = ()  # validated on and trained on (sd-scripts' rounding)
    enabled: bool = False
    unknown_split: bool = False  # validation on without a seed: which images were held out is unknowable
    empty_subsets: tuple[Path, ...] = ()  # subsets whose split holds no image out (too few images)
    exact_shares: tuple[tuple[Path, float], ...] = ()  # subsets with an image in both sets: a clean share


def dataset_validation(document: Mapping[str, Any], arguments: Mapping[str, Any],
                       resolve: Any = Path) -> DatasetValidation:
    """The held-out images of a ``--dataset_config`` document (``arguments``: the flat training config).

    ``resolve`` turns an ``image_dir`` value into a folder (the renderer writes absolute paths).
    """
    general = document.get("general", {}) or {}
    held_out: list[Path] = []
    in_both: list[Path] = []
    empty: list[Path] = []
    shares: list[tuple[Path, float]] = []
    enabled = unknown = False
    for block in document.get("datasets", []) or []:
        settings = dataset_validation_settings(block, general, arguments)
        if not settings.enabled:
            continue
        enabled = True
        if settings.seed is None:
            unknown = True
            continue
        for subset in block.get("subsets", []) or []:
            if not subset.get("image_dir") or subset.get("is_reg", False):
                continue  # sd-scripts never splits regularisation images
            folder = resolve(str(subset["image_dir"]))
            images = sd_scripts_image_list(folder)
            split = split_images(images, settings.split, settings.seed)
            held_out.extend(split.held_out)
            in_both.extend(split.in_both)
            if images and not split.held_out:
                empty.append(folder)
            if split.in_both:
                shares.append((folder, exact_share(len(images), settings.split)))
    return DatasetValidation(tuple(held_out), tuple(in_both), enabled, unknown, tuple(empty), tuple(shares))


def latest_validation_loss(losses: Sequence[Mapping[str, Any]], epoch: int) -> float | None:
    """The newest validation loss logged at or before ``epoch`` (rows ``{"epoch": E, "loss": L}``, as the
    run record keeps them); None when none was logged yet."""
    best: tuple[int, float] | None = None
    for row in losses:
        row_epoch, loss = row.get("epoch"), row.get("loss")
        if not isinstance(row_epoch, int) or not isinstance(loss, (int, float)) or row_epoch > epoch:
            continue
        if best is None or row_epoch >= best[0]:
            best = (row_epoch, float(loss))
    return best[1] if best else None
