"""Atomic writes: a result file is either the old one or the new one, never half of each.

The temporary file lives in the destination folder so that ``os.replace`` is a same-filesystem rename.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        # Refuse rather than replace: a folder where a result file belongs is the user's, not ours.
        raise IsADirectoryError(f"{path} is a directory; refusing to write a file over it")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; a result file gets the mode a plain open() would give it (or keeps its own).
        os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _mode_for(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_current_umask()


def _current_umask() -> int:
    # Linux shows the umask without changing it; elsewhere set-and-restore (not thread-safe, but brief).
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, *, indent: int = 2) -> Path:
    # allow_nan=False: a NaN written as bare `NaN` is not JSON and breaks every other reader.
    text = json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False, default=_json_default)
    return atomic_write_text(path, text + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _aside_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.old")


def recover_interrupted_swap(target: str | Path) -> None:
    """Finish or undo a swap of :func:`atomic_folder` that was killed between its two renames.

    Killed after the old folder was moved aside but before the new one was moved in, the target is gone
    and only the aside copy is left: it is put back, so the result that existed is never lost. Killed
    after both renames, the aside copy is stale and is removed.
    """
    target = Path(target)
    aside = _aside_name(target)
    if not aside.exists():
        return
    if target.exists():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        aside.rename(target)


@contextmanager
def atomic_folder(target: str | Path) -> Iterator[Path]:
    """Build a folder beside ``target``; swap it in only when the ``with`` block finishes cleanly.

    Readers see the old folder or the complete new one, never a half-built one: an interrupted model,
    tokenizer or dataset build would otherwise be trusted by the next run. A swap killed between its two
    renames is repaired by :func:`recover_interrupted_swap`, which the next call runs first.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_interrupted_swap(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield staging
        aside = _aside_name(target)
        if target.exists():
            target.rename(aside)
        staging.rename(target)
        shutil.rmtree(aside, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
