"""Training presets: our TOML files in ``configs/training/``.

A preset has a ``[preset]`` table (name, family, description, min_vram_gb), a ``[dataset]`` table that
becomes sd-scripts' ``--dataset_config`` and any number of other tables (``[network]``,
``[optimizer]``, ...) that become its ``--config_file``. Presets never hold machine paths.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.common.errors import UserInputError
from orchestrator.common.tomlfile import read_toml
from orchestrator.config.names import check_output_name
from orchestrator.config.paths import project_root

_PRESET_KEYS = {"name", "family", "description", "min_vram_gb"}
# Keys whose values are machine paths: they come from configs/paths.toml, never from a preset.
PATH_KEYS = frozenset({
    "pretrained_model_name_or_path", "output_dir", "logging_dir", "sample_prompts", "dataset_config",
    "tokenizer_cache_dir", "train_data_dir", "reg_data_dir", "vae", "resume", "image_dir",
    "clip_l", "clip_g", "t5xxl", "ae",
})


@dataclass(frozen=True)
class Preset:
    name: str
    family: str  # a name in orchestrator/kohya/families.py; checked there when the preset is rendered
    description: str
    min_vram_gb: float
    dataset: dict[str, Any]
    sections: dict[str, dict[str, Any]]  # section name -> {kohya argument: value}
    source: Path | None = None
    warnings: tuple[str, ...] = field(default=())

    def copy_tables(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Deep copies of the dataset and training tables: rendering must never mutate a preset."""
        return copy.deepcopy(self.dataset), copy.deepcopy(self.sections)


def presets_dir(root: Path | None = None) -> Path:
    return (root or project_root()) / "configs" / "training"


def available_presets(root: Path | None = None) -> list[str]:
    return sorted(path.stem for path in presets_dir(root).glob("*.toml"))


def resolve_preset_path(name_or_path: str | Path, root: Path | None = None) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        if not candidate.is_file():
            raise UserInputError("preset file not found", path=candidate)
        return candidate
    path = presets_dir(root) / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(available_presets(root)) or "none"
        raise UserInputError(f"no preset named {name_or_path!r} (known: {known})", path=path)
    return path


def load_preset(name_or_path: str | Path, root: Path | None = None) -> Preset:
    path = resolve_preset_path(name_or_path, root)
    data = read_toml(path)
    meta = data.pop("preset", None)
    if not isinstance(meta, dict):
        raise UserInputError("a preset needs a [preset] table with name and family", path=path, key="preset")
    unknown = sorted(set(meta) - _PRESET_KEYS)
    if unknown:
        raise UserInputError(f"unknown key in [preset]; allowed: {sorted(_PRESET_KEYS)}", path=path,
                             key=f"preset.{unknown[0]}")
    family = meta.get("family")
    if not isinstance(family, str) or not family:
        raise UserInputError(f"family must be a model family's name (sd15, sdxl, flux1, ...), got {family!r}",
                             path=path, key="preset.family")
    dataset = data.pop("dataset", {})
    if not isinstance(dataset, dict):
        raise UserInputError("[dataset] must be a table", path=path, key="dataset")
    sections: dict[str, dict[str, Any]] = {}
    for section, table in data.items():
        if not isinstance(table, dict):
            raise UserInputError(
                "top-level keys belong in a table such as [training]", path=path, key=section
            )
        sections[section] = table
    # sd-scripts flattens the sections into one namespace: a key in two of them would have no one value.
    seen_in: dict[str, str] = {}
    for section, table in sections.items():
        for key in table:
            if key in seen_in:
                raise UserInputError(f"set in both [{seen_in[key]}] and [{section}]; sd-scripts reads the "
                                     "sections as one namespace, so give it once", path=path,
                                     key=f"{section}.{key}")
            seen_in[key] = section
    for table_name, table in [("dataset", dataset), *sections.items()]:
        for key in table:
            if key in PATH_KEYS:
                raise UserInputError(
                    "presets never hold machine paths; set it in configs/paths.toml or with --set",
                    path=path, key=f"{table_name}.{key}",
                )
    min_vram_gb = meta.get("min_vram_gb", 0.0)
    if isinstance(min_vram_gb, bool) or not isinstance(min_vram_gb, (int, float)) or not 0 <= min_vram_gb < 1e6:
        raise UserInputError(f"must be a number of GiB >= 0, got {min_vram_gb!r}", path=path,
                             key="preset.min_vram_gb")
    return Preset(
        name=check_output_name(meta.get("name", path.stem), path=path, key="preset.name"),
        family=family,
        description=str(meta.get("description", "")),
        min_vram_gb=float(min_vram_gb),
        dataset=dataset,
        sections=sections,
        source=path,
    )
