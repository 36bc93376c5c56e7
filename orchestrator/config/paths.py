"""Where things live on this machine: one place, never inside a preset.

Resolution order for each key (later wins):
1. the defaults below (relative paths are relative to the project root);
2. ``configs/paths.toml`` (committed, documented defaults);
3. ``configs/paths.local.toml`` (git-ignored, a machine's own paths);
4. environment variables ``LORA_PIPELINE_<KEY>`` (e.g. ``LORA_PIPELINE_SD_SCRIPTS``).

The project root is ``$LORA_PIPELINE_HOME``, else the nearest parent of the current directory that has
``configs/training/``, else the folder above the installed package.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

from orchestrator.common.errors import UserInputError
from orchestrator.common.tomlfile import read_toml

_PACKAGE_PARENT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ProjectPaths:
    root: Path
    sd_scripts: Path
    trainer_python: str
    base_model_sd15: str  # a local file/folder or a hub id
    base_model_sdxl: str
    tokenizer_cache_dir: str  # "" = let sd-scripts use the hub
    dataset_dir: Path  # the kohya dataset parent (holds {repeats}_{name}/)
    output_root: Path  # each run writes to output_root/<output_name>/
    logs_dir: Path  # logs/training
    prompts_file: Path
    # The newer families' model files (FLUX.1, Chroma, SD3.5): "" = not set on this machine. Which family
    # needs which key is in orchestrator/kohya/families.py.
    base_model_flux1: str = ""
    base_model_chroma: str = ""
    base_model_sd35: str = ""
    clip_l: str = ""
    clip_g: str = ""
    t5xxl: str = ""
    ae: str = ""

    def with_overrides(self, **changes: object) -> ProjectPaths:
        return replace(self, **changes)


_DEFAULTS: dict[str, str] = {
    "sd_scripts": "sd-scripts",
    "trainer_python": ".venv-trainer/bin/python",
    "base_model_sd15": "runwayml/stable-diffusion-v1-5",
    "base_model_sdxl": "stabilityai/stable-diffusion-xl-base-1.0",
    "tokenizer_cache_dir": "",
    "dataset_dir": "data/kohya",
    "output_root": "outputs",
    "logs_dir": "logs/training",
    "prompts_file": "prompts/luca/luca_validation_prompts.txt",
    "base_model_flux1": "",
    "base_model_chroma": "",
    "base_model_sd35": "",
    "clip_l": "",
    "clip_g": "",
    "t5xxl": "",
    "ae": "",
}
# Where scripts/setup.sh copies the export of the pinned sd-scripts when the submodule cannot be fetched.
LOCAL_SD_SCRIPTS_EXPORT = ".cache/sd-scripts"
_PATH_KEYS = {"sd_scripts", "dataset_dir", "output_root", "logs_dir", "prompts_file"}
# Model files that are never hub ids: a relative one is the project's, "" stays unset.
_MODEL_FILE_KEYS = {"base_model_flux1", "base_model_chroma", "base_model_sd35", "clip_l", "clip_g", "t5xxl", "ae"}


def project_root() -> Path:
    if env := os.environ.get("LORA_PIPELINE_HOME"):
        return Path(env).expanduser().resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "configs" / "training").is_dir():
            return candidate
    return _PACKAGE_PARENT


def default_sd_scripts(root: Path) -> str:
    """The submodule when it is checked out, else setup.sh's local copy of the export when that exists."""
    submodule, export = root / _DEFAULTS["sd_scripts"], root / LOCAL_SD_SCRIPTS_EXPORT
    if not (submodule / "train_network.py").is_file() and (export / "train_network.py").is_file():
        return LOCAL_SD_SCRIPTS_EXPORT
    return _DEFAULTS["sd_scripts"]


def _read_paths_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    data = read_toml(path, what="paths file")
    table = data.get("paths", data)
    unknown = sorted(set(table) - set(_DEFAULTS))
    if unknown:
        raise UserInputError(
            f"unknown path keys {unknown}; known: {sorted(_DEFAULTS)}", path=path, key=unknown[0]
        )
    return {key: str(value) for key, value in table.items()}


def _resolve(root: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def load_paths(root: Path | None = None) -> ProjectPaths:
    root = root or project_root()
    values = dict(_DEFAULTS)
    values.update(_read_paths_file(root / "configs" / "paths.toml"))
    values.update(_read_paths_file(root / "configs" / "paths.local.toml"))
    for key in _DEFAULTS:
        if env := os.environ.get(f"LORA_PIPELINE_{key.upper()}"):
            values[key] = env
    if values["sd_scripts"] == _DEFAULTS["sd_scripts"]:
        values["sd_scripts"] = default_sd_scripts(root)
    resolved: dict[str, object] = {"root": root}
    for field in fields(ProjectPaths):
        if field.name == "root":
            continue
        value = values[field.name]
        if field.name in _PATH_KEYS:
            resolved[field.name] = _resolve(root, value)
        elif field.name == "trainer_python":
            # A bare command name ("python3") stays as is; a relative path is the project's.
            resolved[field.name] = str(_resolve(root, value)) if "/" in value else value
        elif field.name == "tokenizer_cache_dir" or field.name in _MODEL_FILE_KEYS:
            resolved[field.name] = str(_resolve(root, value)) if value else ""
        else:
            local = _resolve(root, value)
            resolved[field.name] = str(local) if local.exists() else value
    return ProjectPaths(**resolved)  # type: ignore[arg-type]


def model_path(paths: ProjectPaths, key: str) -> str:
    """The value of the model key ``key`` of configs/paths.toml ("" when unset)."""
    if key not in _DEFAULTS or key in _PATH_KEYS or key in {"trainer_python", "tokenizer_cache_dir"}:
        raise KeyError(f"{key!r} is no model key of configs/paths.toml")
    return str(getattr(paths, key))


def add_location_arguments(parser) -> None:
    """``--sd-scripts`` and ``--trainer-python`` for every command that touches sd-scripts."""
    parser.add_argument("--sd-scripts", metavar="DIR", help="sd-scripts checkout (default: ./sd-scripts, "
                        "or $LORA_PIPELINE_SD_SCRIPTS)")
    parser.add_argument("--trainer-python", metavar="PATH", help="Python of the trainer environment "
                        "(default: .venv-trainer/bin/python, or $LORA_PIPELINE_TRAINER_PYTHON)")


def paths_from_args(args) -> ProjectPaths:
    """``load_paths()`` with the command line's ``--sd-scripts`` / ``--trainer-python`` on top."""
    paths = load_paths()
    changes: dict[str, object] = {}
    if getattr(args, "sd_scripts", None):
        sd_scripts = Path(args.sd_scripts).expanduser().resolve()
        if not sd_scripts.is_dir():
            raise UserInputError("is not a folder" if sd_scripts.exists() else "does not exist",
                                 path=sd_scripts, key="sd-scripts", hint="give the sd-scripts checkout's folder")
        changes["sd_scripts"] = sd_scripts
    if getattr(args, "trainer_python", None):
        changes["trainer_python"] = args.trainer_python
    return paths.with_overrides(**changes) if changes else paths
