"""Embed image files: cached, streamed, with decoding overlapped with the model.

Pipeline: content hashes (memoised) -> cache lookup -> for the misses only, a bounded window of
decode+preprocess jobs runs in a thread pool while the model embeds the previous batch (Pillow,
resizing and torch ops release the GIL). At most ``batch_size * (workers + 3)`` decoded images exist
at once (the queued window plus the batch in the model), so memory does not grow with the number
of files. A file that cannot be decoded is recorded in ``failures`` and the rest go on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.common.progress import progress_bar
from orchestrator.vision._cache import EmbeddingCache, hash_file
from orchestrator.vision._clip import ClipEncoder
from orchestrator.vision._images import DEFAULT_MAX_PIXELS, ImageDecodeError, open_image_rgb


@dataclass
class EmbeddingTable:
    """Embeddings of the files that could be read, in input order, plus why the others could not.

    ``vectors[i]`` is the L2-normalised embedding of ``paths[i]`` whose content hash is ``hashes[i]``.
    ``computed`` files went through the model in this call; ``reused`` came from the cache.
    ``extras``: for each content hash decoded in this call, what ``embed_files(also=...)`` returned for it.
    """

    paths: list[Path]
    hashes: list[str]
    vectors: np.ndarray
    failures: dict[Path, ImageDecodeError] = field(default_factory=dict)
    computed: int = 0
    reused: int = 0
    extras: dict[str, Any] = field(default_factory=dict)
    _positions: dict[Path, int] | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, path: str | Path) -> np.ndarray:
        return self.vectors[self._index()[Path(path)]]

    def __contains__(self, path: object) -> bool:
        return isinstance(path, (str, Path)) and Path(path) in self._index()

    def as_dict(self) -> dict[Path, np.ndarray]:
        return dict(zip(self.paths, self.vectors, strict=True))

    def _index(self) -> dict[Path, int]:
        # Built on first lookup; a table is not modified after embed_files returns it.
        if self._positions is None or len(self._positions) != len(self.paths):
            self._positions = {path: i for i, path in enumerate(self.paths)}
        return self._positions


def embed_files(
    encoder: ClipEncoder,
    paths: Iterable[str | Path],
    *,
    cache: EmbeddingCache | None = None,
    batch_size: int = 32,
    workers: int = 2,
    progress: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    also: Callable[[Any], Any] | None = None,
) -> EmbeddingTable:
    """Embed image files with ``encoder``; reuse and fill ``cache`` (keyed by content + encoder identity).

    ``also``: called on each decoded RGB image in the decoding thread (e.g. ``measure_image``), so a
    caller that needs something else from the pixels does not decode the file a second time; results
    land in ``EmbeddingTable.extras`` by content hash (for the files embedded in this call only).
    Never raises for a bad file: unreadable ones land in ``EmbeddingTable.failures`` with the reason.
    """
    paths = [Path(p) for p in paths]
    workers = max(1, workers)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed") as pool:
        hashes, failures = _content_hashes(paths, cache, pool)
        found = cache.get_many(encoder.identity, hashes.values()) if cache is not None else {}
        # One decode per distinct content: copies of a frame share its hash.
        pending = list({hashes[p]: p for p in paths if p in hashes and hashes[p] not in found}.values())
        computed: dict[str, np.ndarray] = {}
        extras: dict[str, Any] = {}
        failed_by_hash: dict[str, ImageDecodeError] = {}
        with _maybe_progress(progress, len(pending)) as advance:
            for batch_hashes, vectors, batch_failures in _embed_stream(
                    encoder, pending, hashes, pool, batch_size, workers, max_pixels, also, extras):
                failed_by_hash.update({hashes[p]: error for p, error in batch_failures.items()})
                computed.update(zip(batch_hashes, vectors, strict=True))
                if cache is not None and batch_hashes:
                    cache.put_many(encoder.identity, zip(batch_hashes, vectors, strict=True))
                advance(len(batch_hashes) + len(batch_failures))
    for path in paths:
        if path in hashes and hashes[path] in failed_by_hash:
            failures[path] = failed_by_hash[hashes[path]]
    kept = [p for p in paths if p not in failures]
    vectors = [found[hashes[p]] if hashes[p] in found else computed[hashes[p]] for p in kept]
    matrix = (np.stack(vectors).astype(np.float32) if vectors
              else np.zeros((0, encoder.embedding_dim), dtype=np.float32))
    return EmbeddingTable(paths=kept, hashes=[hashes[p] for p in kept], vectors=matrix,
                          failures={p: failures[p] for p in paths if p in failures},
                          computed=len(computed), reused=sum(1 for p in kept if hashes[p] in found),
                          extras=extras)


def _content_hashes(paths: list[Path], cache: EmbeddingCache | None,
                    pool: ThreadPoolExecutor) -> tuple[dict[Path, str], dict[Path, ImageDecodeError]]:
    hashes: dict[Path, str] = {}
    failures: dict[Path, ImageDecodeError] = {}
    to_hash = []
    for path in paths:
        known = cache.known_hash(path) if cache is not None else None
        if known:
            hashes[path] = known
        else:
            to_hash.append(path)
    fresh = []
    for path, outcome in zip(to_hash, pool.map(_safe_hash, to_hash), strict=True):
        if isinstance(outcome, ImageDecodeError):
            failures[path] = outcome
        else:
            hashes[path] = outcome[3]
            fresh.append(outcome)
    if cache is not None and fresh:
        cache.remember_hashes(fresh)
    return hashes, failures


def _safe_hash(path: Path) -> tuple[Path, int, int, str] | ImageDecodeError:
    try:
        return hash_file(path)
    except FileNotFoundError:
        return ImageDecodeError("missing", "file not found", path=path)
    except OSError as error:
        return ImageDecodeError("unreadable", f"cannot read file ({error.strerror or error})", path=path)


def _embed_stream(encoder: ClipEncoder, paths: list[Path], hashes: dict[Path, str], pool: ThreadPoolExecutor,
                  batch_size: int, workers: int, max_pixels: int, also: Callable[[Any], Any] | None,
                  extras: dict[str, Any],
                  ) -> Iterator[tuple[list[str], np.ndarray, dict[Path, ImageDecodeError]]]:
    import torch

    def prepare(path: Path) -> Any:
        try:
            image = open_image_rgb(path, max_pixels=max_pixels)
            if also is not None:
                extras[hashes[path]] = also(image)  # one key per thread and hash: no lock needed
            return encoder.preprocess(image)
        except ImageDecodeError as error:
            return error
        except OSError as error:
            return ImageDecodeError("unreadable", f"cannot read file ({error})", path=path)

    window: deque[tuple[Path, Future[Any]]] = deque()
    remaining = iter(paths)
    limit = batch_size * (workers + 2)  # queued jobs; the batch being embedded is on top

    def refill() -> None:
        while len(window) < limit:
            path = next(remaining, None)
            if path is None:
                return
            window.append((path, pool.submit(prepare, path)))

    refill()
    while window:
        tensors, batch_hashes, failures = [], [], {}
        while window and len(tensors) < batch_size:
            path, future = window.popleft()
            outcome = future.result()
            if isinstance(outcome, ImageDecodeError):
                failures[path] = outcome
            else:
                tensors.append(outcome)
                batch_hashes.append(hashes[path])
        refill()  # keep the workers decoding while the model runs
        vectors = encoder.embed_tensors(torch.stack(tensors)) if tensors else np.zeros((0, 0), np.float32)
        yield batch_hashes, vectors, failures


class _maybe_progress:
    def __init__(self, enabled: bool, total: int) -> None:
        self._bar = progress_bar(unit="img") if enabled and total else None
        self._total = total

    def __enter__(self) -> Any:
        if self._bar is None:
            return lambda n: None
        self._bar.__enter__()
        task = self._bar.add_task("embedding images", total=self._total, rate="")

        def advance(count: int) -> None:
            self._bar.advance(task, count)
            speed = self._bar.tasks[0].speed
            self._bar.update(task, rate=f"{speed:.1f} img/s" if speed else "")
        return advance

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
