"""What ``DIR/project.toml`` may hold: every key, its default, why it is there, and the check of its value.

The table below is the one place a project key is named. ``init`` writes it out with the comments (so a
person sees every option and its default), and :func:`load_project` checks every file against it on
every load: an unknown key, a bad value, a file from a newer version or a folder that is no project is
refused naming the file and the key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.common.errors import UserInputError
from orchestrator.common.numbers import number_problem
from orchestrator.common.tomlfile import read_toml
from orchestrator.search.choices import DEFAULT_SCHEDULER, SCHEDULER_KINDS

PROJECT_FILE = "project.toml"
#: The version this code writes and reads; a file from a newer one is refused rather than half-understood.
PROJECT_VERSION = 1
RANDOM = "random"  # a model built locally with random weights (the toy project; proves the chain only)
FINAL_MODES = ("train", "search")
DEVICES = ("cpu", "cuda")

Check = Callable[[Any], "str | None"]


def known_families() -> tuple[str, ...]:
    """The model families the code can train (kohya/ knows them); a new family needs no change here."""
    from orchestrator.kohya.checkout import TRAINING_SCRIPTS

    return tuple(sorted(TRAINING_SCRIPTS))


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) else f"expected text, got {value!r}"


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"expected true or false, got {value!r}"


def _whole(low: int) -> Check:
    return lambda value: number_problem(value, integer=True, low=low)


def _number(low: float, high: float | None = None) -> Check:
    return lambda value: number_problem(value, low=low, high=high)


def _one_of(choices: Callable[[], tuple[str, ...]] | tuple[str, ...]) -> Check:
    def check(value: Any) -> str | None:
        allowed = choices() if callable(choices) else choices
        return None if value in allowed else f"must be one of {', '.join(allowed)}, got {value!r}"
    return check


def _texts(value: Any) -> str | None:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        return f"expected a list of one or more paths, got {value!r}"
    return None


def _table(value: Any) -> str | None:
    return None if isinstance(value, dict) else f"expected a table such as {{learning_rate = 6e-5}}, got {value!r}"


@dataclass(frozen=True)
class Key:
    section: str
    name: str
    default: Any
    comment: str
    check: Check


#: Every key of project.toml, in the order ``init`` writes them. Paths are relative to the project folder.
KEYS: tuple[Key, ...] = (
    Key("project", "version", PROJECT_VERSION, "the project file's format; written by init, do not edit",
        _whole(1)),
    Key("project", "family", "sd15", "model family (the families this version knows)", _one_of(known_families)),
    Key("project", "device", "cuda", "where models and training run: cuda or cpu", _one_of(DEVICES)),
    Key("project", "gpus", "", 'GPUs to train on: "" = any free one, "0" or "0,1" = those', _text),
    Key("project", "name", "character", "the character's name in folder and checkpoint names", _text),
    Key("inputs", "films", [], "the films (any format ffmpeg/OpenCV reads)", _texts),
    Key("inputs", "references", "", "a folder of clean reference stills of the character", _text),
    Key("inputs", "profile", "", "the character profile (YAML: trigger, description, ...)", _text),
    Key("models", "base_model", "", '"" = the family\'s base model in configs/paths.toml; a file, folder or hub id',
        _text),
    Key("models", "clip_model", "ViT-L-14", "open_clip architecture for identity and scoring", _text),
    Key("models", "clip_weights", "openai", f'open_clip weights: a tag or a file; "{RANDOM}" = random (toy only)',
        _text),
    Key("models", "vlm_weights", "Qwen/Qwen2-VL-7B-Instruct", "caption model (Qwen2-VL): a folder or a hub id",
        _text),
    Key("models", "detector", "google/owlv2-base-patch16-ensemble", "OWLv2 detector for the crops", _text),
    Key("models", "segmenter", "facebook/sam-vit-base", "SAM segmenter for the crops' masks", _text),
    Key("models", "model_cache", "", '"" = ~/.cache/lora-pipeline/quickstart-models: where random models are built',
        _text),
    Key("extract", "per_shot", 3, "sharpest usable frames kept per shot", _whole(1)),
    Key("crop", "masks", True, "cut the character's mask (alpha) and train with masked loss", _flag),
    Key("crop", "min_side", 256, "a crop's short side in px at least", _whole(32)),
    Key("crop", "identity_threshold", 0.75, "CLIP similarity to the references a crop needs (-1 = off)",
        _number(-1.0, 1.0)),
    Key("curate", "config", "", '"" = configs/curation/default.toml; or a curation TOML', _text),
    Key("curate", "identity_threshold", 0.75, "CLIP similarity a frame needs to be kept automatically (-1 = off)",
        _number(-1.0, 1.0)),
    Key("dataset", "repeats", 10, "kohya repeats of each image per epoch", _whole(1)),
    Key("caption", "batch_size", 8, "images captioned at once", _whole(1)),
    Key("train", "preset", "", '"" = the family\'s default preset; a preset name or a TOML file', _text),
    Key("train", "set", {}, "kohya overrides, as --set: {learning_rate = 6e-5, max_train_epochs = 10}", _table),
    Key("final", "mode", "train", "the last step: one training (train) or a hyperparameter search (search)",
        _one_of(FINAL_MODES)),
    Key("final", "space", "", '"" = the family\'s search space; a space name in configs/search or a TOML file',
        _text),
    Key("final", "trials", 20, "search: trials to run (the budget)", _whole(1)),
    Key("final", "seed", 0, "search: the sampler's seed (0 = unseeded)", _whole(0)),
    Key("final", "scheduler", DEFAULT_SCHEDULER,
        "search: pause and resume runs by their early scores (first-epoch, pause) or train each to its end (none)",
        _one_of(SCHEDULER_KINDS)),
    Key("final", "gpu_hours", 0.0, "search: GPU-hours the scheduler may spend (0 = the trials are the budget)",
        _number(0.0)),
    Key("final", "top", 5, "checkpoints on the blind comparison page", _whole(2)),
)
# What "" means for a family's preset and search space (configs/training, configs/search); a family missing
# here has no default, and the project must name one.
DEFAULT_PRESETS = {"sd15": "luca_final_v1_pure", "sdxl": "sdxl_16gb_optimized", "flux1": "flux1_dev_24gb",
                   "chroma": "chroma_24gb", "sd35": "sd35_medium_16gb"}
DEFAULT_SPACES = {"sd15": "luca_tpe_v2_1", "flux1": "flux1_character"}


def defaults() -> dict[str, dict[str, Any]]:
    document: dict[str, dict[str, Any]] = {}
    for key in KEYS:
        value = key.default
        document.setdefault(key.section, {})[key.name] = dict(value) if isinstance(value, dict) else (
            list(value) if isinstance(value, list) else value)
    return document


@dataclass(frozen=True)
class Project:
    """A project folder and its checked settings (``settings[section][key]``, every key present)."""

    folder: Path
    settings: Mapping[str, Mapping[str, Any]]

    @property
    def file(self) -> Path:
        return self.folder / PROJECT_FILE

    def get(self, section: str, name: str) -> Any:
        return self.settings[section][name]

    def path(self, section: str, name: str) -> Path:
        """A path setting, relative to the project folder when not absolute."""
        return (self.folder / Path(self.get(section, name)).expanduser()).resolve()

    @property
    def films(self) -> list[Path]:
        return [(self.folder / Path(f).expanduser()).resolve() for f in self.get("inputs", "films")]


def check_settings(document: Mapping[str, Any], *, path: Path) -> dict[str, dict[str, Any]]:
    """``document`` with every key checked and the missing ones at their defaults; raises on the first problem."""
    version = document.get("project", {}).get("version") if isinstance(document.get("project"), dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > PROJECT_VERSION:
        raise UserInputError(f"written by a newer lora-pipeline (project version {version}; this one reads "
                             f"{PROJECT_VERSION})", path=path, key="project.version",
                             hint="update lora-pipeline, or run init in a new folder")
    by_place = {(key.section, key.name): key for key in KEYS}
    settings = defaults()
    for section, table in document.items():
        if section not in settings:
            raise UserInputError(f"unknown section [{section}] (known: {', '.join(settings)})", path=path,
                                 key=section)
        if not isinstance(table, dict):
            raise UserInputError("expected a table", path=path, key=section)
        for name, value in table.items():
            key = by_place.get((section, name))
            if key is None:
                known = ", ".join(k.name for k in KEYS if k.section == section)
                raise UserInputError(f"unknown key (known in [{section}]: {known})", path=path,
                                     key=f"{section}.{name}")
            problem = key.check(value)
            if problem is not None:
                raise UserInputError(problem, path=path, key=f"{section}.{name}")
            settings[section][name] = value
    for section, name in (("inputs", "films"), ("inputs", "references"), ("inputs", "profile")):
        if not settings[section][name]:
            raise UserInputError("missing: a project needs its films, references and profile", path=path,
                                 key=f"{section}.{name}")
    return settings


def load_project(folder: str | Path) -> Project:
    """The project in ``folder``, checked; refuses a folder without a project.toml."""
    folder = Path(folder).expanduser().resolve()
    file = folder / PROJECT_FILE
    if not file.is_file():
        raise UserInputError(f"not a project folder: no {PROJECT_FILE}", path=folder,
                             hint=f"create one with `lora-pipeline init {folder} --film FILM --references REFS "
                                  "--profile PROFILE`")
    return Project(folder=folder, settings=check_settings(read_toml(file, what="project file"), path=file))


def render_project_toml(settings: Mapping[str, Mapping[str, Any]]) -> str:
    """project.toml's text: every key with its comment, sections in the table's order."""
    from orchestrator.common.tomlfile import dumps_toml

    lines = ["# lora-pipeline project: the one file to edit. `lora-pipeline run DIR` redoes the stages whose",
             "# options or inputs changed, and those after them. Paths are relative to this folder.", ""]
    section = None
    for key in KEYS:
        if key.section != section:
            section = key.section
            lines += ["" if len(lines) > 3 else "", f"[{section}]"]
        value = dumps_toml({key.name: settings[key.section][key.name]}).strip()
        if isinstance(settings[key.section][key.name], dict):  # an inline table keeps the key on one line
            inner = ", ".join(dumps_toml({k: v}).strip() for k, v in settings[key.section][key.name].items())
            value = f"{key.name} = {{{inner}}}"
        lines.append(f"{value:<48} # {key.comment}")
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"
