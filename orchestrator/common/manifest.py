"""What an upstream stage said about each file of a folder: its ``manifest.jsonl``, one JSON object a line.

``extract`` writes one line per frame (video, shot, frame, time code), ``crop`` one per frame it looked
at (source frame, box, crop box, scores). The next stage reads them by file name with
:func:`facts_by_file`, so the shot and the box travel with the image down the chain.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.common.errors import UserInputError

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
