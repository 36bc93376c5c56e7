"""The search's folder: one directory per Optuna trial number, and who (which process) owns a trial.

``OUTPUT/trials/trial_0007/`` holds ``config.toml`` (the trial's full preset), ``params.json`` and the
training run (``run/``). A directory is created exclusively, so a number is never reused even when two
studies point at the same folder by mistake. The owner (host, pid, process start time) is stored in the
study as a user attribute, so a resumed search can tell "my predecessor died" from "another worker is
still busy with it".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_write_json
from orchestrator.common.errors import UserInputError
from orchestrator.common.process import ProcessIdentity
from orchestrator.common.tomlfile import parse_toml, write_toml

TRIALS_DIR = "trials"
OWNER_FILE = "search_trial.json"


def trial_directory(output: Path, number: int) -> Path:
    return output / TRIALS_DIR / f"trial_{number:04d}"


# A trial's owner is a process identity; the search has always called it a worker.
WorkerIdentity = ProcessIdentity


def create_trial_directory(output: Path, number: int, *, study_name: str, params: Mapping[str, Any],
                           config: Mapping[str, Any]) -> Path:
    directory = trial_directory(output, number)
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        directory.mkdir()
    except FileExistsError:
        owner = read_trial_owner(directory)
        if owner.get("study_name") != study_name or owner.get("number") != number:
            raise UserInputError(
                f"{directory} belongs to study {owner.get('study_name')!r}, trial {owner.get('number')}; "
                "use another --out or the same --study-name", path=directory,
            ) from None
        # Same study, same number: an earlier attempt of this very trial died after mkdir; reuse is safe.
    atomic_write_json(directory / OWNER_FILE, {"study_name": study_name, "number": number})
    atomic_write_json(directory / "params.json", dict(params))
    write_toml(directory / "config.toml", config)
    return directory


def read_trial_owner(directory: Path) -> dict[str, Any]:
    try:
        return json.loads((directory / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return {}


def read_trial_config(directory: Path) -> dict[str, Any]:
    return parse_toml((directory / "config.toml").read_text(encoding="utf-8"))
