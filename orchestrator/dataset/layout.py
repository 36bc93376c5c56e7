"""The kohya dataset folder: ``DST/{repeats}_{name}/`` holding images and same-stem ``.txt`` captions.

``prepare_kohya_dataset`` builds it from a folder of images and captions (byte-for-byte copies, so the
masks of ``crop --masks``, the crops' alpha channel, arrive as they are; the source is only read). ``validate_kohya_dataset`` checks one before training: the training runner's pre-flight
and the quickstart call it too.
"""

from __future__ import annotations

import re
import shutil
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from orchestrator.common.atomic import atomic_folder
from orchestrator.common.errors import UserInputError, require_folder_target
from orchestrator.config.names import output_name_problem
from orchestrator.kohya.dataset_files import TRAINABLE_IMAGE_SUFFIXES, image_has_alpha

#: Image suffixes kohya's dataset loader picks up (lower-case; matched case-insensitively).
KOHYA_IMAGE_SUFFIXES = TRAINABLE_IMAGE_SUFFIXES
CAPTION_SUFFIX = ".txt"
# kohya's latent cache files live beside the images: expected, never a problem.
_IGNORED_SUFFIXES = frozenset({".npz"})
_SUBSET_FOLDER = re.compile(r"^(\d+)_(.+)$")


@dataclass(frozen=True)
class DatasetProblem:
    path: Path
    code: str  # unreadable_image | missing_caption | empty_caption | orphan_caption | duplicate_stem | ...
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class SubsetReport:
    folder: Path
    repeats: int
    name: str
    images: int
    captions: int
    masked: int = 0  # images whose alpha channel is the loss mask


@dataclass
class DatasetReport:
    root: Path
    subsets: list[SubsetReport] = field(default_factory=list)
    problems: list[DatasetProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # harmless oddities (stray files)

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.subsets)

    @property
    def images(self) -> int:
        return sum(s.images for s in self.subsets)

    @property
    def captions(self) -> int:
        return sum(s.captions for s in self.subsets)

    @property
    def images_x_repeats(self) -> int:
        return sum(s.images * s.repeats for s in self.subsets)

    def counts_line(self) -> str:
        relation = "=" if self.images == self.captions else "≠"
        return f"{self.images} images {relation} {self.captions} captions"


def subset_folder_name(repeats: int, name: str) -> str:
    return f"{repeats}_{name}"


def validate_kohya_dataset(directory: str | Path) -> DatasetReport:
    """Check a kohya dataset: ``directory`` is the parent of ``{repeats}_{name}/`` folders or one of them.

    Problems: an image that ``PIL`` cannot fully decode, a missing, empty or non-UTF-8 caption, a caption without an
    image, two images with one stem (``a.png`` + ``a.jpg`` would share ``a.txt``), a subset folder
    without images, no subset folder at all.
    """
    root = Path(directory)
    report = DatasetReport(root=root)
    if not root.is_dir():
        report.problems.append(DatasetProblem(root, "missing_folder", "dataset folder not found"))
        return report
    subset_dirs = [root] if _SUBSET_FOLDER.match(root.name) else sorted(
        p for p in root.iterdir() if p.is_dir() and _SUBSET_FOLDER.match(p.name))
    if not subset_dirs:
        report.problems.append(DatasetProblem(root, "no_subset_folder",
                                              "no '<repeats>_<name>' folder (e.g. 10_luca); "
                                              "run `lora-pipeline dataset prepare` to create the layout"))
    for folder in subset_dirs:
        report.subsets.append(_validate_subset(folder, report))
    return report


def _validate_subset(folder: Path, report: DatasetReport) -> SubsetReport:
    match = _SUBSET_FOLDER.match(folder.name)
    assert match is not None
    images: dict[str, list[Path]] = defaultdict(list)
    captions: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        suffix = path.suffix.lower()
        if path.name.startswith(".") or suffix in _IGNORED_SUFFIXES:
            continue
        if path.is_dir():
            report.notes.append(f"{path}: sub-folder ignored by kohya")
        elif suffix in KOHYA_IMAGE_SUFFIXES:
            images[path.stem].append(path)
        elif suffix == CAPTION_SUFFIX:
            captions[path.stem] = path
        else:
            report.notes.append(f"{path}: not an image kohya reads ({suffix or 'no suffix'}); ignored by training")
    for stem, paths in images.items():
        if len(paths) > 1:
            report.problems.append(DatasetProblem(paths[0], "duplicate_stem", "images share one stem and would "
                                                  f"share one caption: {', '.join(p.name for p in paths)}"))
        for path in paths:
            if reason := _verify_image(path):
                report.problems.append(DatasetProblem(path, "unreadable_image", reason))
        caption = captions.get(stem)
        if caption is None:
            report.problems.append(DatasetProblem(paths[0], "missing_caption", f"no caption {stem}{CAPTION_SUFFIX}"))
        elif (caption_problem := _caption_problem(caption)) is not None:
            report.problems.append(DatasetProblem(caption, *caption_problem))
    for stem, caption in captions.items():
        if stem not in images:
            report.problems.append(DatasetProblem(caption, "orphan_caption", "caption without an image"))
    if not images:
        report.problems.append(DatasetProblem(folder, "no_images", "subset folder has no images"))
    count = sum(len(p) for p in images.values())
    masked = sum(1 for paths in images.values() for path in paths if image_has_alpha(path))
    if 0 < masked < count:
        report.notes.append(f"{folder}: {count - masked} of {count} images have no mask (alpha channel); "
                            "masked loss trains on the whole of those")
    return SubsetReport(folder, int(match.group(1)), match.group(2), count, len(captions), masked)


def _verify_image(path: Path) -> str | None:
    """Decode the image the way the trainer will (every pixel, converted to RGB), not only its checksums:
    a PNG whose chunks verify can still hold a pixel stream that fails after minutes of training."""
    if path.stat().st_size == 0:
        return "zero-byte image file"
    try:
        with Image.open(path) as image:
            image.verify()  # structure and checksums
        with Image.open(path) as image:
            image.load()
            image.convert("RGB")
    except Exception as error:  # Pillow raises many types for broken files
        return f"image does not decode ({type(error).__name__}: {error})"
    return None


def _caption_problem(path: Path) -> tuple[str, str] | None:
    """``(code, message)`` for a caption the trainer cannot use: sd-scripts reads it as strict UTF-8."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        return "caption_not_utf8", (f"caption is not UTF-8 text ({error.reason} at byte {error.start}); "
                                    "sd-scripts reads captions as UTF-8")
    except OSError as error:
        return "unreadable_caption", f"caption cannot be read ({error.strerror or error})"
    if not text.strip():
        return "empty_caption", "caption is empty"
    return None


def _refuse_what_training_cannot_read(images: list[Path], captions: Iterable[Path]) -> None:
    """The checks ``dataset validate`` makes, on the source before anything is copied: a dataset folder
    with a broken image or caption would only fail in the trainer, and a name holding a newline would
    break every list of files it is written into."""
    for path in [*images, *captions]:
        if any(unicodedata.category(char).startswith("C") for char in path.name):
            raise UserInputError(f"file name {path.name!r} holds a control character (newline, tab, ...)",
                                 path=path.parent, hint="rename the file")
    for image in images:
        if (reason := _verify_image(image)) is not None:
            raise UserInputError(reason, path=image, hint="remove or replace it; the source is only read")
    for caption in captions:
        if (problem := _caption_problem(caption)) is not None and problem[0] != "empty_caption":
            raise UserInputError(problem[1], path=caption, hint="fix it in the source; it is only read")


@dataclass(frozen=True)
class PreparedDataset:
    folder: Path  # DST/{repeats}_{name}
    images: int
    captions: int
    missing_captions: list[Path]
    skipped: list[Path]  # files in SRC that are neither images nor their captions
    masked: int = 0  # images that carry a mask as their alpha channel: the render turns on masked loss


def prepare_kohya_dataset(source: str | Path, destination: str | Path, *, repeats: int, name: str,
                          overwrite: bool = False) -> PreparedDataset:
    """Copy SRC's images and same-stem ``.txt`` captions into ``DST/{repeats}_{name}/``.

    Refuses to mix into a non-empty subset folder unless ``overwrite`` (which replaces it).
    The folder is assembled beside its final name and renamed into place.
    """
    source, destination = Path(source), Path(destination)
    if repeats < 1:
        raise UserInputError(f"repeat must be >= 1, got {repeats}", key="repeat")
    # The subset name is the tail of a folder name: the output-name rule (no separators, control
    # characters, leading '.') keeps it one plain folder inside DST.
    if (problem := output_name_problem(name)) is not None:
        raise UserInputError(f"invalid dataset name: {problem}", key="name")
    if not source.is_dir():
        raise UserInputError("source folder not found", path=source)
    target = require_folder_target(destination / subset_folder_name(repeats, name), key="out")
    real_source, real_target = source.resolve(), target.resolve()
    if real_target.is_relative_to(real_source) or real_source.is_relative_to(real_target):
        # --overwrite replaces the target folder: it must never hold (or be held by) the input.
        raise UserInputError(f"the dataset folder {target} would lie inside the source or hold it; the "
                             "source is only ever read", path=destination, key="out",
                             hint="choose an --out outside the source folder")
    files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in KOHYA_IMAGE_SUFFIXES]
    if not images:
        raise UserInputError(f"no images ({', '.join(sorted(KOHYA_IMAGE_SUFFIXES))}) in the source folder",
                             path=source)
    stems = Counter(p.stem for p in images)
    clashing = sorted(stem for stem, count in stems.items() if count > 1)
    if clashing:
        raise UserInputError(f"images share a stem and would share one caption: {clashing[0]!r}", path=source,
                             hint="rename one of them")
    captions = {p.stem: p for p in files if p.suffix.lower() == CAPTION_SUFFIX and p.stem in stems}
    _refuse_what_training_cannot_read(images, captions.values())
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise UserInputError("dataset folder already has files", path=target,
                             hint="pass --overwrite to replace it, or choose another --out")
    with atomic_folder(target) as staging:
        for image in images:
            shutil.copy2(image, staging / image.name)
            if image.stem in captions:
                shutil.copy2(captions[image.stem], staging / f"{image.stem}{CAPTION_SUFFIX}")
    used = {*images, *captions.values()}
    return PreparedDataset(folder=target, images=len(images), captions=len(captions),
                           missing_captions=[p for p in images if p.stem not in captions],
                           skipped=[p for p in files if p not in used],
                           masked=sum(1 for p in images if image_has_alpha(p)))
