"""What an upstream stage said about each file of a folder: its ``manifest.jsonl``, one JSON object a line.

``extract`` writes one line per frame (video, shot, frame, time code), ``crop`` one per frame it looked
at (source frame, box, crop box, scores). The next stage reads them by file name with
:func:`facts_by_file`, so the shot and the box travel with the image down the chain.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.common.errors import UserInputError, require_folder_target

MANIFEST_NAME = "manifest.jsonl"


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every object of a JSON-lines file (blank lines skipped); :class:`UserInputError` naming the line
    that is not a JSON object."""
    path = Path(path)
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as error:
            raise UserInputError(f"line {number} is not JSON ({error})", path=path) from error
        if not isinstance(row, dict):
            raise UserInputError(f"line {number} is not a JSON object", path=path)
        rows.append(row)
    return rows


def facts_by_file(folder: str | Path, *, name: str = MANIFEST_NAME) -> dict[str, dict[str, Any]]:
    """``file name -> manifest line`` for the lines of ``folder/name`` that name a ``file`` (the output file
    of the stage that wrote it); empty when the folder has no manifest."""
    path = Path(folder) / name
    if not path.is_file():
        return {}
    return {str(row["file"]): row for row in read_jsonl(path) if row.get("file")}


SUMMARY_NAME = "summary.json"
UNKNOWN_OWNER = "another stage or tool"
#: A key only that stage's summary.json holds, for summaries written before they named their ``stage``.
_STAGE_KEYS = {"extract": "videos", "crop": "detector", "curate": "funnel"}


def stage_of(folder: str | Path) -> str | None:
    """The stage whose ``manifest.jsonl``/``summary.json`` ``folder`` holds: ``extract``, ``crop``,
    ``curate``, :data:`UNKNOWN_OWNER`, or None when it holds neither."""
    folder = Path(folder)
    manifest, summary = folder / MANIFEST_NAME, folder / SUMMARY_NAME
    if not folder.is_dir() or not (manifest.exists() or summary.exists()):
        return None
    try:
        document = json.loads(summary.read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        return UNKNOWN_OWNER
    if not isinstance(document, dict):
        return UNKNOWN_OWNER
    if isinstance(document.get("stage"), str):
        return document["stage"]
    return next((stage for stage, key in _STAGE_KEYS.items() if key in document), UNKNOWN_OWNER)


def claim_stage_folder(folder: str | Path, stage: str, *, key: str = "out", source: str | Path | None = None,
                       overwrite: bool = False) -> Path:
    """``folder`` as ``stage``'s output folder: new, empty of manifests, or ``stage``'s own (a rerun).

    Every stage writes ``manifest.jsonl`` and ``summary.json``; pointed at another stage's folder it would
    replace that stage's record of its work (a curation's decisions are keyed to its manifest), so that is
    refused before anything is read or written. So is ``stage``'s own folder made from another ``source``
    (its summary's ``frames_dir``) unless ``overwrite``: a rerun resumes, a different input replaces."""
    folder = require_folder_target(folder, key=key)
    owner = stage_of(folder)
    if owner is not None and owner != stage:
        raise UserInputError(f"holds the {MANIFEST_NAME} of {owner}; {stage} would overwrite it", path=folder,
                             key=key, hint=f"give {stage} a new or empty folder")
    earlier = _summary_source(folder) if owner == stage and source is not None and not overwrite else None
    if earlier is not None and Path(earlier).resolve() != Path(source).resolve():  # type: ignore[arg-type]
        raise UserInputError(f"holds the {stage} of {earlier}; {stage} of {source} would replace it",
                             path=folder, key="overwrite",
                             hint=f"pass --overwrite to replace it, or give {stage} another --{key}")
    return folder


def _summary_source(folder: Path) -> str | None:
    try:
        document = json.loads((folder / SUMMARY_NAME).read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        return None
    source = document.get("frames_dir") if isinstance(document, dict) else None
    return source if isinstance(source, str) and source else None
