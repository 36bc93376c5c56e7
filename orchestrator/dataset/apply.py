"""``curate apply``: the reviewed set, copied into ``OUT_DIR/selected/``. Originals are only read.

The final set is: accepted frames the reviewer did not reject, plus any other readable frame the
reviewer marked "keep" (borderline ones, usually). ``selected/`` is built beside the old one and
swapped in, so an interrupted apply leaves the previous selection intact.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from orchestrator.common.atomic import atomic_folder, atomic_write_json
from orchestrator.common.errors import UserInputError
from orchestrator.common.hashing import file_sha256
from orchestrator.dataset.records import ACCEPTED, MANIFEST_NAME, FrameRecord, read_manifest
from orchestrator.dataset.review import DECISIONS_FORMAT

SELECTED_DIR = "selected"
SELECTION_NAME = "selection.json"
_VALUES = ("keep", "reject")


@dataclass(frozen=True)
class Selection:
    folder: Path
    copied: list[tuple[Path, Path]]  # (original, copy)
    kept_by_reviewer: int  # frames added that curation had not accepted
    rejected_by_reviewer: int  # accepted frames the reviewer removed


def load_decisions(path: Path, *, curation_id: str | None = None) -> dict[str, str]:
    """relative_path -> "keep" | "reject", from a file exported by review.html.

    ``curation_id``: the run the decisions must come from (``records.curation_id`` of its manifest); a
    file exported from another run's review page, or one without an id, is refused.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise UserInputError("decisions file not found", path=path) from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserInputError(f"not a JSON decisions file ({error})", path=path) from error
    if not isinstance(data, dict) or data.get("format") != DECISIONS_FORMAT or not isinstance(
            data.get("decisions"), dict):
        raise UserInputError("not a decisions file exported by review.html", path=path,
                             hint=f"expected an object with format={DECISIONS_FORMAT!r} and a 'decisions' table")
    if curation_id is not None and data.get("curation_id") != curation_id:
        found = data.get("curation_id")
        problem = (f"was exported from another curation run (curation_id {found!r}; this run is {curation_id!r})"
                   if found else "names no curation run (written by hand or by an older review page)")
        raise UserInputError(f"decisions file {problem}", path=path, key="curation_id",
                             hint="export the decisions again from this run's review.html")
    bad = {k: v for k, v in data["decisions"].items() if v not in _VALUES}
    if bad:
        frame, value = next(iter(bad.items()))
        raise UserInputError(f"decision for {frame!r} is {value!r}; expected 'keep' or 'reject'", path=path,
                             key="decisions")
    return dict(data["decisions"])


def final_set(records: list[FrameRecord], decisions: dict[str, str]) -> list[FrameRecord]:
    """Pure: the frames to copy, in manifest (film) order."""
    by_id = {r.relative_path: r for r in records}
    unknown = sorted(set(decisions) - set(by_id))
    if unknown:
        raise UserInputError(f"{len(unknown)} decided frame(s) are not in this curation's manifest, e.g. "
                             f"{unknown[0]!r}; was the decisions file exported from another run's review page?",
                             key="decisions")
    unusable = [k for k, v in decisions.items() if v == "keep" and by_id[k].stage == "decode"]
    if unusable:
        raise UserInputError(f"cannot keep {unusable[0]!r}: the file is unreadable "
                             f"({by_id[unusable[0]].reasons[0]['message']})", key="decisions")
    return [r for r in records
            if decisions.get(r.relative_path, "keep" if r.verdict == ACCEPTED else "reject") == "keep"]


def apply_decisions(out_dir: Path, decisions: dict[str, str] | None = None) -> Selection:
    """Copy the final set into ``out_dir/selected/`` and write ``out_dir/selection.json``."""
    records = read_manifest(out_dir / MANIFEST_NAME)
    decisions = decisions or {}
    chosen = final_set(records, decisions)
    names = _copy_names(chosen)
    _refuse_foreign_files(out_dir / SELECTED_DIR, out_dir / SELECTION_NAME)
    copied = []
    with atomic_folder(out_dir / SELECTED_DIR) as staging:
        for record, name in zip(chosen, names, strict=True):
            source = Path(record.path)
            if not source.is_file():
                raise UserInputError("frame vanished since curation", path=source)
            if record.sha256 and file_sha256(source) != record.sha256:
                raise UserInputError("frame changed since curation; run `lora-pipeline curate` again", path=source)
            shutil.copy2(source, staging / name)
            copied.append((source, out_dir / SELECTED_DIR / name))
    selection = Selection(
        folder=out_dir / SELECTED_DIR,
        copied=copied,
        kept_by_reviewer=sum(1 for r in chosen if r.verdict != ACCEPTED),
        rejected_by_reviewer=sum(1 for r in records if r.verdict == ACCEPTED and decisions.get(r.relative_path)
                                 == "reject"),
    )
    atomic_write_json(out_dir / SELECTION_NAME, {
        "count": len(copied),
        "kept_by_reviewer": selection.kept_by_reviewer,
        "rejected_by_reviewer": selection.rejected_by_reviewer,
        "files": [{"source": str(src), "copy": str(dst)} for src, dst in copied],
    })
    return selection


def _refuse_foreign_files(selected: Path, selection_file: Path) -> None:
    """``selected/`` is replaced whole; refuse when it holds a file the last apply did not copy there
    (captions written next to the selected frames, say), which the swap would delete."""
    if not selected.is_dir():
        return
    try:
        listed = {Path(item["copy"]).name for item in json.loads(selection_file.read_text(encoding="utf-8"))["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        listed = set()
    foreign = sorted(p.name for p in selected.iterdir() if p.name not in listed)
    if foreign:
        raise UserInputError(f"holds {len(foreign)} file(s) no `curate apply` copied there, e.g. {foreign[0]!r}; "
                             "applying again replaces the folder and would lose them", path=selected,
                             hint="move them out first (caption or edit a copy, e.g. the output of dataset prepare)")


def _copy_names(records: list[FrameRecord]) -> list[str]:
    """Flat file names: the original name, or the relative path joined with "__" when two collide."""
    plain = [Path(r.relative_path).name for r in records]
    clashes = {name for name in plain if plain.count(name) > 1}
    return [r.relative_path.replace("/", "__") if name in clashes else name for r, name in zip(records, plain,
                                                                                              strict=True)]


