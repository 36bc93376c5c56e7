"""A preset plus overrides become the two files sd-scripts reads.

``RUN_DIR/config/training.toml`` is passed as ``--config_file`` and names
``RUN_DIR/config/dataset.toml`` (``dataset_config``). Machine paths come from ``ProjectPaths``.
xformers is always off and SDPA on: the target GPUs (RTX 50-series) do not support xformers.

Validation loss is turned on by ``validation_split`` (a ``[dataset]`` key of the preset or ``--set
dataset.validation_split=0.1``). The renderer then makes it reproducible and cheap: it writes a
``validation_seed`` when none is given (the training ``seed``, else 0) so that the held-out images can be
recomputed later (:mod:`orchestrator.kohya.validation`), and validates every ``sample_every_n_epochs``
epochs when ``validate_every_n_epochs`` is unset: a loss is wanted where a score is, and sd-scripts'
default (every epoch) would double the cost for epochs nobody scores.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.common.errors import UserInputError, require_folder_target
from orchestrator.common.tomlfile import write_toml
from orchestrator.config.names import check_output_name
from orchestrator.config.paths import ProjectPaths
from orchestrator.config.presets import Preset, load_preset
from orchestrator.kohya.checkout import TRAINING_SCRIPTS
from orchestrator.kohya.contract import Contract, DatasetSchema, recorded_contract
from orchestrator.kohya.dataset_files import ALPHA_MASK_SUBSET_KEY, MASKED_LOSS_ARGUMENT, masked_image_count
from orchestrator.kohya.outputs import SAMPLE_AT_FIRST_ARGUMENT
from orchestrator.kohya.placement import DATASET_TABLE, override_table
from orchestrator.kohya.validation import (
    EVERY_N_EPOCHS_KEY,
    MAX_STEPS_KEY,
    SEED_KEY,
    SPLIT_KEY,
    dataset_validation,
)

log = logging.getLogger(__name__)

HEADER_PATTERN = re.compile(r"^# lora-pipeline: family=(?P<family>\w+) script=(?P<script>\S+)", re.M)
KOHYA_FOLDER = re.compile(r"^(?P<repeats>\d+)_(?P<name>.+)$")


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
                    contract: Contract, family: str) -> None:
    table, name = override_table(key, dataset, sections, family=family, contract=contract)
    (dataset if table == DATASET_TABLE else sections.setdefault(table, {}))[name] = value


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


def _mask_subset(subset: dict[str, Any]) -> None:
    """A subset whose images carry masks (alpha, e.g. ``crop --masks``) trains with masked loss, unless the
    preset or ``--set dataset.alpha_mask=false`` says otherwise."""
    if ALPHA_MASK_SUBSET_KEY in subset:
        return
    masked, images = masked_image_count(subset["image_dir"])
    if masked:
        subset[ALPHA_MASK_SUBSET_KEY] = True
        log.info("%s: %d of %d images carry a mask (alpha channel): %s = true, masked loss", subset["image_dir"],
                 masked, images, ALPHA_MASK_SUBSET_KEY)


def uses_alpha_masks(dataset_document: Mapping[str, Any]) -> bool:
    """Whether any subset of a dataset document trains with its images' alpha as the loss mask."""
    return any(subset.get(ALPHA_MASK_SUBSET_KEY) is True for dataset in dataset_document.get("datasets", [])
               for subset in dataset.get("subsets", []))


def _build_dataset_document(dataset: dict[str, Any], image_root: Path, schema: DatasetSchema) -> dict:
    explicit_dir = dataset.pop("image_dir", None)
    repeats = dataset.pop("num_repeats", 1)
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise UserInputError(f"must be a whole number >= 1, got {repeats!r}", key="dataset.num_repeats")
    subsets = _discover_subsets(Path(explicit_dir) if explicit_dir else image_root, repeats)
    if explicit_dir and not KOHYA_FOLDER.match(Path(explicit_dir).name):
        subsets = [{"image_dir": str(explicit_dir), "num_repeats": repeats}]
    subset_only = set(schema.subset) - set(schema.general)
    for key in [k for k in dataset if k in subset_only]:
        value = dataset.pop(key)
        for subset in subsets:
            subset.setdefault(key, value)
    for subset in subsets:
        _mask_subset(subset)
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
        _place_override(key, value, dataset, sections, contract, preset.family)

    training_flat = {k: v for table in sections.values() for k, v in table.items()}
    if "output_name" in (overrides or {}):
        name_origin: dict[str, Any] = {"key": "--set output_name"}
    else:
        name_origin = {"path": preset.source, "key": "output_name" if "output_name" in training_flat
                       else "preset.name"}
    output_name = check_output_name(training_flat["output_name"] if "output_name" in training_flat else preset.name,
                                    **name_origin)
    run_dir = require_folder_target(Path(run_dir or paths.output_root / output_name).resolve(), key="out")
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
        sample_table = sections.setdefault("sample", {})
        sample_table.setdefault("sample_prompts", str(paths.prompts_file))
        # The base model's samples (epoch 0) are evaluation's floor: what the run starts from.
        if SAMPLE_AT_FIRST_ARGUMENT not in training_flat:
            sample_table[SAMPLE_AT_FIRST_ARGUMENT] = True
    logging_table = sections.setdefault("logging", {})
    logging_table.setdefault("logging_dir", str(run_dir / "logs"))
    logging_table.setdefault("log_prefix", output_name)

    arguments = contract.arguments_of(script)
    float_arguments = {k for k, spec in arguments.items() if spec.value_type == "float"}
    for table in sections.values():
        _coerce_floats(table, float_arguments)
    dataset_document = _build_dataset_document(dataset, paths.dataset_dir, contract.dataset_schema)
    if uses_alpha_masks(dataset_document) and MASKED_LOSS_ARGUMENT not in training_flat:
        sections.setdefault("training", {})[MASKED_LOSS_ARGUMENT] = True
    training_flat = {k: v for table in sections.values() for k, v in table.items()}
    if _settle_validation(dataset_document, sections, training_flat, warnings):
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


def _settle_validation(document: dict[str, Any], sections: dict[str, dict[str, Any]], training: dict[str, Any],
                       warnings: list[str]) -> bool:
    """Seed and schedule a validation the preset turned on; True when a training table changed."""
    general = document["general"]
    split = general.get(SPLIT_KEY, training.get(SPLIT_KEY))
    if split is None:
        return False
    if isinstance(split, bool) or not isinstance(split, (int, float)) or not 0.0 <= split < 1.0:
        raise UserInputError(f"must be a share of the images in [0, 1), got {split!r}", key=SPLIT_KEY)
    general[SPLIT_KEY] = float(split)
    training.pop(SPLIT_KEY, None)
    for table in sections.values():  # one place: the dataset config, which sd-scripts reads first
        table.pop(SPLIT_KEY, None)
    if split == 0.0:
        return True
    if training.get(MAX_STEPS_KEY) is not None:
        warnings.append(f"{MAX_STEPS_KEY} validates on the first batches only, and data loader workers "
                        "reshuffle them every epoch: epochs are then compared on different images")
    if SEED_KEY not in general and training.get(SEED_KEY) is None:
        seed = training.get("seed")
        general[SEED_KEY] = seed if isinstance(seed, int) and not isinstance(seed, bool) else 0
    changed = True
    sample_every = training.get("sample_every_n_epochs")
    if training.get(EVERY_N_EPOCHS_KEY) is None and isinstance(sample_every, int) and sample_every > 1:
        sections.setdefault("validation", {})[EVERY_N_EPOCHS_KEY] = sample_every
    validation = dataset_validation(document, training)
    for folder, share in validation.exact_shares:
        warnings.append(f"{SPLIT_KEY} = {split:g}: sd-scripts' rounding puts an image of {folder} in both the "
                        f"training and the validation set, so its validation loss is partly measured on a "
                        f"training image; {SPLIT_KEY} = {share:g} splits that folder cleanly")
    for folder in validation.empty_subsets:
        warnings.append(f"{SPLIT_KEY} = {split:g} holds no image of {folder} out (too few images): that "
                        "folder adds nothing to the validation loss")
    return changed


def write_rendered(rendered: RenderedRun) -> None:
    header = (f"# lora-pipeline: family={rendered.family} script={rendered.script_name} "
              f"preset={rendered.preset_name}\n# Rendered for sd-scripts --config_file; edit the preset, "
              "not this file.\n\n")
    write_toml(rendered.config_file, rendered.sections, header=header)
    dataset_header = f"# lora-pipeline: dataset config for {rendered.output_name} (sd-scripts --dataset_config)\n\n"
    write_toml(rendered.dataset_config_file, rendered.dataset, header=dataset_header)
