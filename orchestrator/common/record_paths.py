"""A file a record names, as it is on the disk of the folder the record lives in now.

Records (``run.json``, ``scores.json``) store absolute paths, and a run folder gets copied, moved or
mounted elsewhere: trusted as written, a copy's record points back into the original folder, and an
evaluation of the copy scores the original's checkpoints. The rule: a path a record gives for a file of
its own folder is re-read relative to where the record lives now, and a path outside that folder is not
the folder's file at all (the caller says so and leaves it out). Whether the file is there is the disk's
answer, not the record's.
"""

from __future__ import annotations

from pathlib import Path


def _inside(path: Path, folder: Path) -> Path | None:
    """``path`` relative to ``folder`` when it lies inside it (``..`` and links resolved), else None."""
    try:
        return path.resolve().relative_to(folder.resolve())
    except (ValueError, OSError, RuntimeError):
        return None


def on_disk(value: str | Path, *, folder: Path, recorded_folder: str | Path | None = None) -> Path | None:
    """Where the file a record in ``folder`` names as ``value`` is now; None when it lies outside the folder.

    ``recorded_folder`` is where the record said it lived when it was written (``run.json``'s ``run_dir``):
    a path under it is mapped onto ``folder``; a relative path is relative to ``folder``."""
    path = Path(value)
    if not path.is_absolute():
        return folder / path if _inside(folder / path, folder) is not None else None
    if recorded_folder is not None:
        recorded = Path(recorded_folder)
        if path == recorded or recorded in path.parents:
            relative = path.relative_to(recorded)
            return folder / relative if _inside(folder / relative, folder) is not None else None
    inside = _inside(path, folder)
    return folder / inside if inside is not None else None
