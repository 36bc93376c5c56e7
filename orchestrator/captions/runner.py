"""Caption a folder: plan, describe in batches, write ``STEM.txt`` atomically, check token lengths.

Resumable by construction: an image whose caption file exists is skipped (unless ``overwrite``), and
each caption is written (temp file + rename) as soon as its batch is answered, so a crash loses at most
the batch in flight (and, on a hard kill, the batch being written) and never leaves a half-written or
truncated caption.
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.captions.profile import CharacterProfile, load_profile
from orchestrator.captions.scene import build_prompt, parse_scene
from orchestrator.captions.template import assemble_caption
from orchestrator.captions.tokens import TokenCheck, check_token_lengths
from orchestrator.common.atomic import atomic_write_text
from orchestrator.common.errors import UserInputError
from orchestrator.common.progress import progress_bar
from orchestrator.kohya.dataset_files import TRAINABLE_IMAGE_SUFFIXES
from orchestrator.kohya.families import FAMILIES

if TYPE_CHECKING:
    from PIL import Image

    from orchestrator.captions.backends import CaptionBackend

IMAGE_SUFFIXES: tuple[str, ...] = tuple(sorted(TRAINABLE_IMAGE_SUFFIXES))


@dataclass(frozen=True)
class CaptionJob:
    image: Path
    caption: Path


@dataclass(frozen=True)
class CaptionPlan:
    """Which images get a caption this run, and which already have one."""

    jobs: tuple[CaptionJob, ...]
    existing: tuple[CaptionJob, ...]


@dataclass(frozen=True)
class CaptionFailure:
    image: Path
    reason: str


@dataclass
class CaptionReport:
    """What a run did; ``generate_seconds`` is the time spent inside the VLM back-end."""

    image_dir: Path
    written: list[Path] = field(default_factory=list)
    skipped_existing: list[Path] = field(default_factory=list)
    failures: list[CaptionFailure] = field(default_factory=list)
    empty_scenes: list[Path] = field(default_factory=list)  # the VLM gave no usable scene detail
    token_check: TokenCheck | None = None
    seconds: float = 0.0
    generate_seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return len(self.written) / self.seconds if self.seconds > 0 else 0.0


def caption_path_for(image: Path, output_dir: Path | None = None) -> Path:
    return (output_dir or image.parent) / f"{image.stem}.txt"


def plan_captions(image_dir: str | Path, *, output_dir: str | Path | None = None,
                  overwrite: bool = False) -> CaptionPlan:
    """List the images of ``image_dir`` and their caption files; reject what cannot be written."""
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise UserInputError("image folder not found", path=image_dir)
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise UserInputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in this folder", path=image_dir)
    out = Path(output_dir) if output_dir is not None else None
    if out is not None and out.exists() and not out.is_dir():
        raise UserInputError("caption output folder is a file", path=out)
    jobs: list[CaptionJob] = []
    existing: list[CaptionJob] = []
    by_caption: dict[Path, Path] = {}
    for image in images:
        job = CaptionJob(image=image, caption=caption_path_for(image, out))
        if job.caption in by_caption:
            raise UserInputError(f"two images share the caption file {job.caption.name}: "
                                 f"{by_caption[job.caption].name} and {image.name}", path=image)
        by_caption[job.caption] = image
        if job.caption.is_dir():
            raise UserInputError("the caption file for this image is a directory; move it away",
                                 path=job.caption)
        done = not overwrite and job.caption.exists() and _usable_caption(job.caption)
        (existing if done else jobs).append(job)
    return CaptionPlan(jobs=tuple(jobs), existing=tuple(existing))


def _usable_caption(path: Path) -> bool:
    """An empty caption (a back-end that returned nothing) is not done: it is captioned again.

    Any other existing file is kept as it is (a non-UTF-8 one is ``dataset validate``'s to report; it
    may be a person's work).
    """
    try:
        return bool(path.read_bytes().strip())
    except OSError:
        return True


def read_image(path: Path) -> Image.Image:
    """The image as RGB, fully decoded now so that a broken file fails here and names itself."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as handle:
            handle.load()
            return handle.convert("RGB")
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UserInputError(f"unreadable image: {error}", path=path) from error


def caption_folder(image_dir: str | Path, profile: CharacterProfile | str | Path, *, backend: CaptionBackend,
                   batch_size: int = 1, overwrite: bool = False, progress: bool = True,
                   output_dir: str | Path | None = None, family: str = "sd15",
                   check_tokens: bool = True) -> CaptionReport:
    """Caption every image of ``image_dir`` with ``backend``; returns what was done.

    Args:
        image_dir: folder of frames; captions go next to them as ``STEM.txt`` (or into ``output_dir``).
        profile: the character's fixed text, or the path of its YAML file (see ``load_profile``).
        backend: a loaded VLM (:func:`orchestrator.captions.backends.load_qwen_backend`).
        batch_size: images per ``generate`` call.
        overwrite: re-caption images that already have a caption (replaced atomically).
        progress: show a progress bar with images/s and ETA.
        family: the model family the captions are for (``kohya/families.py``): its caption style (tag
            list for CLIP families, sentences for T5 ones) and its token-length check.
        check_tokens: count CLIP tokens of every caption in the folder after the run.
    """
    if batch_size < 1:
        raise UserInputError(f"batch size must be at least 1, got {batch_size}", key="batch_size")
    if family not in FAMILIES:
        raise UserInputError(f"unknown model family {family!r}; known: {sorted(FAMILIES)}", key="family")
    style = FAMILIES[family].caption_style
    if not isinstance(profile, CharacterProfile):
        profile = load_profile(profile)
    started = time.perf_counter()
    plan = plan_captions(image_dir, output_dir=output_dir, overwrite=overwrite)
    report = CaptionReport(image_dir=Path(image_dir), skipped_existing=[j.caption for j in plan.existing])
    prompt = build_prompt(profile)
    batches = [plan.jobs[i : i + batch_size] for i in range(0, len(plan.jobs), batch_size)]
    bar = progress_bar(unit="images") if progress else None
    # Disk work overlaps the VLM: one thread decodes the next batch, one writes the last batch's
    # captions (in order, each atomically). Leaving the ``with`` waits for both, even on Ctrl-C.
    with (bar if bar is not None else contextlib.nullcontext(),
          ThreadPoolExecutor(max_workers=1) as reader, ThreadPoolExecutor(max_workers=1) as writer):
        task = bar.add_task("captioning", total=len(plan.jobs), rate="") if bar is not None else None
        upcoming = reader.submit(_read_batch, batches[0]) if batches else None
        writing: Future[None] | None = None
        for index, batch in enumerate(batches):
            loaded = upcoming.result() if upcoming is not None else []
            upcoming = reader.submit(_read_batch, batches[index + 1]) if index + 1 < len(batches) else None
            captions = _caption_batch(loaded, profile, prompt, backend, report, style=style)
            if writing is not None:
                writing.result()  # at most one batch waits on disk; its errors surface here
            writing = writer.submit(_write_captions, captions, report)
            if bar is not None and task is not None:
                bar.advance(task, len(batch))
                speed = bar.tasks[0].speed
                bar.update(task, rate=f"{speed:.2f} images/s" if speed else "")
        if writing is not None:
            writing.result()
    report.seconds = time.perf_counter() - started
    if check_tokens:
        report.token_check = check_token_lengths(_captions_on_disk(plan), family=family)
    return report


def _read_batch(batch: tuple[CaptionJob, ...]) -> list[tuple[CaptionJob, Image.Image | CaptionFailure]]:
    loaded: list[tuple[CaptionJob, Image.Image | CaptionFailure]] = []
    for job in batch:
        try:
            loaded.append((job, read_image(job.image)))
        except UserInputError as error:
            loaded.append((job, CaptionFailure(job.image, str(error))))
    return loaded


def _caption_batch(loaded: list[tuple[CaptionJob, Image.Image | CaptionFailure]], profile: CharacterProfile,
                   prompt: str, backend: CaptionBackend, report: CaptionReport, *,
                   style: str = "tags") -> list[tuple[CaptionJob, str]]:
    """Ask the VLM about the readable images; returns each job with its finished caption."""
    readable = []
    for job, image in loaded:
        if isinstance(image, CaptionFailure):
            report.failures.append(image)
        else:
            readable.append((job, image))
    if not readable:
        return []
    generate_started = time.perf_counter()
    answers = backend.describe([image for _, image in readable], prompt)
    report.generate_seconds += time.perf_counter() - generate_started
    captions = []
    for (job, _), answer in zip(readable, answers, strict=True):
        scene = parse_scene(answer, forbidden=profile.forbidden)
        if scene.is_empty:
            report.empty_scenes.append(job.image)
        captions.append((job, assemble_caption(profile, scene, style=style)))
    return captions


def _write_captions(captions: list[tuple[CaptionJob, str]], report: CaptionReport) -> None:
    for job, caption in captions:
        try:
            atomic_write_text(job.caption, caption + "\n")
        except OSError as error:
            report.failures.append(CaptionFailure(job.image, f"cannot write {job.caption}: {error}"))
            continue
        report.written.append(job.caption)


def _captions_on_disk(plan: CaptionPlan) -> dict[Path, str]:
    captions = {}
    for job in (*plan.existing, *plan.jobs):
        try:
            captions[job.caption] = job.caption.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            continue  # never written (a failure, already reported) or not ours to judge
    return captions
