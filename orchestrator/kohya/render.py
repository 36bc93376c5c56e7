"""A preset plus overrides become the two files sd-scripts reads.

``RUN_DIR/config/training.toml`` is passed as ``--config_file`` and names
``RUN_DIR/config/dataset.toml`` (``dataset_config``). Machine paths come from ``ProjectPaths``.
xformers is always off and SDPA on: the target GPUs (RTX 50-series) do not support xformers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import toml

from orchestrator.common.atomic import atomic_write_text
from orchestrator.config.paths import ProjectPaths
from orchestrator.config.presets import Preset, load_preset
from orchestrator.kohya.checkout import TRAINING_SCRIPTS
from orchestrator.kohya.contract import Contract, DatasetSchema, recorded_contract

log = logging.getLogger(__name__)

HEADER_PATTERN = re.compile(r"^# lora-pipeline: family=(?P<family>\w+) script=(?P<script>\S+)", re.M)
KOHYA_FOLDER = re.compile(r"^(?P<repeats>\d+)_(?P<name>.+)$")
DATASET_PREFIX = "dataset."


@dataclass(frozen=True)
class RenderedRun:
    run_dir: Path
    family: str
    script_name: str
    output_name: str
    config_file: Path
    dataset_config_file: Path
    training: dict[str, Any]  # flat: kohya argument -> value, as written
    dataset: dict[str, Any]  # the dataset TOML document
    sections: dict[str, dict[str, Any]] = field(repr=False)
    preset_name: str = ""
    min_vram_gb: float = 0.0
    warnings: tuple[str, ...] = ()

    @property
    def output_dir(self) -> Path:
        return Path(self.training["output_dir"])


def _coerce_floats(table: dict[str, Any], float_keys: set[str]) -> None:
    """sd-scripts' schema wants ``0.0``, not ``0``, for float keys; TOML keeps what it is given."""
    for key, value in table.items():
        if key in float_keys and isinstance(value, int) and not isinstance(value, bool):
            table[key] = float(value)
        elif key in float_keys and isinstance(value, list):
            table[key] = [float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]


def _place_override(key: str, value: Any, dataset: dict[str, Any], sections: dict[str, dict[str, Any]],
                    contract: Contract, script: str) -> None:
    if key.startswith(DATASET_PREFIX):
        dataset[key[len(DATASET_PREFIX):]] = value
        return
    if key in dataset:
        dataset[key] = value
        return
    for table in sections.values():
        if key in table:
            table[key] = value
            return
    schema = contract.dataset_schema
    if key not in contract.arguments_of(script) and (key in schema.general or key in schema.subset):
        dataset[key] = value
    else:
        sections.setdefault("overrides", {})[key] = value


def _discover_subsets(image_root: Path, default_repeats: int) -> list[dict[str, Any]]:
    """``{repeats}_{name}`` folders become subsets; the folder name sets repeats and class tokens."""
    match = KOHYA_FOLDER.match(image_root.name)
    if match:
        return [{"image_dir": str(image_root), "num_repeats": int(match["repeats"])}]
    folders = sorted(p for p in image_root.glob("*") if p.is_dir() and KOHYA_FOLDER.match(p.name)) \
        if image_root.is_dir() else []
    if not folders:
        return [{"image_dir": str(image_root), "num_repeats": default_repeats}]
    return [{"image_dir": str(p), "num_repeats": int(KOHYA_FOLDER.match(p.name)["repeats"])} for p in folders]


def _build_dataset_document(dataset: dict[str, Any], image_root: Path, schema: DatasetSchema) -> dict:
    explicit_dir = dataset.pop("image_dir", None)
    repeats = int(dataset.pop("num_repeats", 1))
    subsets = _discover_subsets(Path(explicit_dir) if explicit_dir else image_root, repeats)
    if explicit_dir and not KOHYA_FOLDER.match(Path(explicit_dir).name):
        subsets = [{"image_dir": str(explicit_dir), "num_repeats": repeats}]
    subset_only = set(schema.subset) - set(schema.general)
    for key in [k for k in dataset if k in subset_only]:
        value = dataset.pop(key)
        for subset in subsets:
            subset.setdefault(key, value)
    float_keys = {k for k, t in {**schema.general, **schema.subset}.items() if t == "float"}
    _coerce_floats(dataset, float_keys)
    return {"general": dataset, "datasets": [{"subsets": subsets}]}


def render_run(preset: Preset | str | Path, *, overrides: Mapping[str, object] | None = None,
               paths: ProjectPaths, run_dir: Path | None = None, write: bool = True,
               contract: Contract | None = None) -> RenderedRun:
    """Render ``preset`` + ``overrides`` into RUN_DIR/config/{training,dataset}.toml.

    The preset is never mutated (its tables are deep-copied). Overrides are kohya argument names
    or ``dataset.<key>``; a key the preset already has is replaced in its own table.
    """
    preset = preset if isinstance(preset, Preset) else load_preset(preset, paths.root)
    contract = contract or recorded_contract()
    script = TRAINING_SCRIPTS[preset.family]
    dataset, sections = preset.copy_tables()
    warnings = list(preset.warnings)
    for key, value in (overrides or {}).items():
        _place_override(key, value, dataset, sections, contract, script)

    training_flat = {k: v for table in sections.values() for k, v in table.items()}
    output_name = str(training_flat.get("output_name") or preset.name)
    run_dir = Path(run_dir or paths.output_root / output_name).resolve()
    config_dir = run_dir / "config"
    config_file, dataset_config_file = config_dir / "training.toml", config_dir / "dataset.toml"

    if training_flat.get("xformers"):
        if (overrides or {}).get("xformers"):
            where = "--set xformers"
        else:
            where = f"{preset.source}: key 'xformers'" if preset.source else "key 'xformers'"
        warnings.append(f"{where}: xformers is not supported on the target GPUs (RTX 50-series); "
                        "rendered with SDPA instead")
    for table in sections.values():
        table.pop("xformers", None)
        table.pop("sdpa", None)
    sections.setdefault("training", {}).update({"sdpa": True, "xformers": False})

    base_model = paths.base_model_sdxl if preset.family == "sdxl" else paths.base_model_sd15
    model_table = sections.setdefault("model", {})
    model_table.setdefault("pretrained_model_name_or_path", str(base_model))
    if paths.tokenizer_cache_dir:
        model_table.setdefault("tokenizer_cache_dir", paths.tokenizer_cache_dir)
    sections.setdefault("data", {})["dataset_config"] = str(dataset_config_file)
    saving = sections.setdefault("saving", {})
    saving["output_dir"] = str(run_dir)
    saving.setdefault("output_name", output_name)
    if "sample_every_n_epochs" in training_flat or "sample_every_n_steps" in training_flat:
        sections.setdefault("sample", {}).setdefault("sample_prompts", str(paths.prompts_file))
    logging_table = sections.setdefault("logging", {})
    logging_table.setdefault("logging_dir", str(run_dir / "logs"))
    logging_table.setdefault("log_prefix", output_name)

    arguments = contract.arguments_of(script)
    float_arguments = {k for k, spec in arguments.items() if spec.value_type == "float"}
    for table in sections.values():
        _coerce_floats(table, float_arguments)
    dataset_document = _build_dataset_document(dataset, paths.dataset_dir, contract.dataset_schema)
    training_flat = {k: v for table in sections.values() for k, v in table.items()}

    # People read the model and data first; the rest keeps the preset's order.
    ordered = {name: sections.pop(name) for name in ("model", "data")}
    sections = {**ordered, **sections}
    rendered = RenderedRun(
        run_dir=run_dir, family=preset.family, script_name=script, output_name=output_name,
        config_file=config_file, dataset_config_file=dataset_config_file, training=training_flat,
        dataset=dataset_document, sections=sections, preset_name=preset.name,
        min_vram_gb=preset.min_vram_gb, warnings=tuple(warnings),
    )
    for warning in warnings:
        log.info("%s", warning)
    if write:
        write_rendered(rendered)
    return rendered


def write_rendered(rendered: RenderedRun) -> None:
    header = (f"# lora-pipeline: family={rendered.family} script={rendered.script_name} "
              f"preset={rendered.preset_name}\n# Rendered for sd-scripts --config_file; edit the preset, "
              "not this file.\n\n")
    atomic_write_text(rendered.config_file, header + toml.dumps(rendered.sections))
    dataset_header = f"# lora-pipeline: dataset config for {rendered.output_name} (sd-scripts --dataset_config)\n\n"
    atomic_write_text(rendered.dataset_config_file, dataset_header + toml.dumps(rendered.dataset))
