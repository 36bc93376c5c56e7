"""``lora-pipeline init DIR``: a project folder whose project.toml names the inputs and every option.

The inputs are checked here and again before every ``run`` (a film can vanish between the two): a
missing or unreadable film, a references folder without images and a profile with a bad key are each
refused naming the file, before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_write_text
from orchestrator.common.errors import UserInputError
from orchestrator.project.schema import (
    DEFAULT_PRESETS,
    PROJECT_FILE,
    Project,
    check_settings,
    defaults,
    render_project_toml,
)


def check_inputs(project: Project) -> None:
    """Refuse, naming the file, a film that is missing or unreadable, references without images, a bad profile."""
    from orchestrator.captions.profile import load_profile
    from orchestrator.extract import probe_video
    from orchestrator.vision import list_image_files

    for film in project.films:
        probe_video(film)  # VideoError (a UserInputError) names the file
    references = project.path("inputs", "references")
    if not references.is_dir():
        raise UserInputError("references folder not found", path=references, key="inputs.references")
    if not list_image_files(references):
        raise UserInputError("references folder holds no images", path=references, key="inputs.references",
                             hint="put a few clean stills of the character in it (.png, .jpg, ...)")
    load_profile(project.path("inputs", "profile"))


def init_project(folder: str | Path, *, films: Sequence[str | Path], references: str | Path, profile: str | Path,
                 family: str = "sd15", settings: Mapping[str, Mapping[str, Any]] | None = None) -> Project:
    """Write ``folder/project.toml`` (every option at its default unless ``settings`` gives it); returns it.

    Refuses a folder that already holds a project (nothing a person edited is overwritten).
    """
    folder = Path(folder).expanduser().resolve()
    file = folder / PROJECT_FILE
    if file.exists():
        raise UserInputError("already a project (its project.toml is kept)", path=file,
                             hint="edit it, or init another folder")
    if folder.exists() and not folder.is_dir():
        raise UserInputError("is a file, not a folder", path=folder)
    document = defaults()
    profile_path = Path(profile).expanduser().resolve()
    document["project"].update(family=family, name=_name_from(profile_path))
    document["inputs"].update(films=[str(Path(f).expanduser().resolve()) for f in films],
                              references=str(Path(references).expanduser().resolve()), profile=str(profile_path))
    document["train"]["preset"] = DEFAULT_PRESETS.get(family, "")
    for section, table in (settings or {}).items():
        document.setdefault(section, {}).update(table)
    project = Project(folder=folder, settings=check_settings(document, path=file))
    check_inputs(project)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(file, render_project_toml(project.settings))
    return project


def _name_from(profile: Path) -> str:
    """The profile file's stem, as a folder-safe name (``luca.yaml`` -> ``luca``)."""
    safe = "".join(c if c.isalnum() else "_" for c in profile.stem.lower()).strip("_")
    return safe or "character"
