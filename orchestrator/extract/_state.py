"""Which film owns which frames of an extract folder, so a later ``extract`` never deletes an earlier one's.

Frame names are ``<key>_s<shot>_f<frame>.png``; ``FRAMES/.extract/<key>.json`` records the film a key
belongs to (its resolved path), the fingerprint it was extracted with, and, once finished, its result. The
record is written before the first frame, so frames with a record belong to that film, and frames of a key
with no record are the partial output of a run killed before this rule existed (or before its first frame).

A second film whose stem is taken by another film's record gets a key of its own (the stem and a short hash
of its path); the same film again is skipped when nothing changed and, when its file or the settings
changed, is only re-extracted with ``overwrite`` (its old frames are replaced): otherwise the command is
refused, naming the record and the frames it would replace, before anything is written.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_write_json
from orchestrator.common.errors import UserInputError

STATE_DIR = ".extract"
LOCK_NAME = ".extract.lock"
SOURCE_KEY = "source"
FINGERPRINT_KEY = "fingerprint"
RESULT_KEY = "result"


@dataclass(frozen=True)
class Plan:
    """What to do with one film: ``done`` holds its finished record when it can be skipped."""

    path: Path
    key: str
    fingerprint: dict[str, Any]
    done: dict[str, Any] | None


def safe_stem(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in text) or "video"


def _path_hash(path: Path) -> str:
    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:6]


def video_keys(videos: Sequence[Path]) -> list[str]:
    """File-name prefixes: the stem, made unique with a short hash of the path where two stems clash."""
    stems = Counter(safe_stem(p.stem) for p in videos)
    return [safe_stem(p.stem) + (f"-{_path_hash(p)}" if stems[safe_stem(p.stem)] > 1 else "") for p in videos]


def frames_of(out_dir: Path, key: str) -> list[Path]:
    return sorted(out_dir.glob(f"{key}_s*_f*.png"))


def clear_frames(out_dir: Path, key: str) -> None:
    for path in frames_of(out_dir, key):
        path.unlink()


def read_record(state_file: Path) -> dict[str, Any] | None:
    """The record at ``state_file`` (None when there is none); a damaged one is refused, naming it, when
    frames depend on it (they would otherwise be taken for a partial run and deleted)."""
    if not state_file.exists():
        return None
    try:
        document = json.loads(state_file.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as error:
        document = error
    if isinstance(document, dict):
        return document
    key = state_file.stem
    if frames_of(state_file.parent.parent, key):
        damage = document if isinstance(document, Exception) else "not a JSON object"
        raise UserInputError(f"this record of which film owns the {key}_s*.png frames is damaged ({damage})",
                             path=state_file, hint="move it aside to extract that film again (its frames are then "
                                                   "replaced), or choose another --out")
    return None  # no frames depend on it: nothing is lost by extracting anew


def _source_of(record: dict[str, Any]) -> Path | None:
    source = record.get(SOURCE_KEY)
    if source is None and isinstance(record.get(RESULT_KEY), dict):
        source = record[RESULT_KEY].get("video")  # a record from before the source was written
    return Path(source).resolve() if isinstance(source, str) and source else None


def _owners(state_dir: Path) -> dict[str, Path | None]:
    """``key -> the film it belongs to`` for every record in ``state_dir`` (None: a record of no film)."""
    if not state_dir.is_dir():
        return {}
    owners = {}
    for state_file in sorted(state_dir.glob("*.json")):
        record = read_record(state_file)
        owners[state_file.stem] = _source_of(record) if record is not None else None
    return owners


def _keys(out_dir: Path, paths: Sequence[Path]) -> list[str]:
    """Each film's key: the one its record already has, else its stem where no other film holds it, else
    the stem and a hash of its path."""
    owners = _owners(out_dir / STATE_DIR)
    by_film = {film: key for key, film in owners.items() if film is not None}
    taken = {key for key, film in owners.items() if film is not None}
    keys = []
    for path, key in zip(paths, video_keys(paths), strict=True):
        key = by_film.get(path.resolve()) or key
        if key in taken and owners.get(key) != path.resolve():
            key = f"{safe_stem(path.stem)}-{_path_hash(path)}"
        taken.add(key)
        keys.append(key)
    return keys


def plan_videos(out_dir: Path, paths: Sequence[Path], fingerprints: Sequence[dict[str, Any]], *,
                overwrite: bool) -> list[Plan]:
    """One :class:`Plan` per film; refuses (before anything is written) to replace a finished film's
    frames that were made from another file version or other settings unless ``overwrite``."""
    state_dir = out_dir / STATE_DIR
    plans = []
    for path, key, fingerprint in zip(paths, _keys(out_dir, paths), fingerprints, strict=True):
        record = read_record(state_dir / f"{key}.json")
        finished = record is not None and isinstance(record.get(RESULT_KEY), dict)
        if finished and record is not None and record.get(FINGERPRINT_KEY) == fingerprint and _frames_present(out_dir, record):
            plans.append(Plan(path, key, fingerprint, record))
            continue
        if finished and not overwrite and frames_of(out_dir, key):
            count = len(frames_of(out_dir, key))
            raise UserInputError(
                f"{path} was extracted here before (record {state_dir / f'{key}.json'}) from another version "
                f"of the file or with other settings; extracting it again would replace its {count} frames "
                f"{key}_s*.png", path=out_dir, key="overwrite",
                hint="pass --overwrite to replace them, or choose another --out")
        plans.append(Plan(path, key, fingerprint, None))
    return plans


def _frames_present(out_dir: Path, record: dict[str, Any]) -> bool:
    frames = record[RESULT_KEY].get("frames")
    return isinstance(frames, list) and all(
        isinstance(line, dict) and (out_dir / str(line.get("file"))).is_file() for line in frames)


def claim(out_dir: Path, plan: Plan) -> Path:
    """Record that ``plan``'s key is its film's before its first frame is written; the record's path."""
    state_file = out_dir / STATE_DIR / f"{plan.key}.json"
    atomic_write_json(state_file, {SOURCE_KEY: str(plan.path.resolve()), FINGERPRINT_KEY: plan.fingerprint})
    return state_file


def finish(state_file: Path, plan: Plan, result: dict[str, Any]) -> None:
    atomic_write_json(state_file, {SOURCE_KEY: str(plan.path.resolve()), FINGERPRINT_KEY: plan.fingerprint,
                                   RESULT_KEY: result})
