"""Checks that sd-scripts does not do itself.

sd-scripts silently ignores an unknown key in ``--config_file`` and exits 0 on a missing dataset
folder; these checks run before launch and name the file and key of every problem.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from orchestrator.kohya.contract import ArgumentSpec, Contract, DatasetSchema
from orchestrator.kohya.trainer_values import (
    TrainerValues,
    prompt_file_problem,
    trainer_values_for,
    value_problems,
)

Severity = Literal["error", "warning"]
# Arguments whose value must name an existing file or folder before launch.
EXISTING_PATH_ARGUMENTS = ("dataset_config", "sample_prompts", "network_weights", "vae", "resume", "base_weights")


@dataclass(frozen=True)
class Problem:
    severity: Severity
    file: Path | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{self.severity}: {where}{self.key}: {self.message}"


def _suggest(key: str, candidates: Iterable[str]) -> str:
    matches = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.75)
    return f"; did you mean '{matches[0]}'?" if matches else ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _matches_argument_type(value: Any, spec: ArgumentSpec) -> bool:
    if spec.is_flag:
        return isinstance(value, bool)
    if spec.is_list and isinstance(value, list):
        return all(_matches_scalar(item, spec.value_type) for item in value)
    return _matches_scalar(value, spec.value_type)


def _matches_scalar(value: Any, value_type: str | None) -> bool:
    if value_type in ("int",):
        return _is_int(value)
    if value_type in ("float", "int_or_float"):
        return _is_int(value) or isinstance(value, float)
    return isinstance(value, str)  # str, Path and anything argparse keeps as text


def _type_name(spec: ArgumentSpec) -> str:
    name = "true/false" if spec.is_flag else spec.value_type or "str"
    return f"{name} or a list of {name}" if spec.is_list else name


def check_training_arguments(values: Mapping[str, Any], script: str, contract: Contract, *,
                             file: Path | None = None, dataset_schema: DatasetSchema | None = None
                             ) -> list[Problem]:
    """Every key must be an argument of ``script``, with the right type and one of its choices."""
    arguments = contract.arguments_of(script)
    problems: list[Problem] = []
    for key, value in values.items():
        spec = arguments.get(key)
        if spec is None:
            hint = _suggest(key, arguments)
            schema = dataset_schema or contract.dataset_schema
            if not hint and (key in schema.general or key in schema.subset):
                hint = "; it is a dataset key: put it in the [dataset] table / --dataset_config"
            other = next((s for s in contract.arguments if s != script and key in contract.arguments[s]), None)
            if not hint and other:
                hint = f"; it is an argument of {other} only"
            problems.append(Problem("error", file, key, f"unknown argument of {script}{hint}"))
            continue
        if not _matches_argument_type(value, spec):
            problems.append(Problem("error", file, key,
                                    f"expected {_type_name(spec)}, got {type(value).__name__} {value!r}"))
            continue
        if (range_problem := _range_problem(key, value, _TRAINING_RANGES)) is not None:
            problems.append(Problem("error", file, key, range_problem))
            continue
        if spec.choices:
            items = value if isinstance(value, list) else [value]
            bad = [item for item in items if item not in spec.choices]
            if bad:
                choices = ", ".join(repr(c) for c in spec.choices)
                problems.append(Problem("error", file, key, f"{bad[0]!r} is not one of {choices}"))
    # Where argparse records no choices, the names the trainer itself accepts (checked now, not minutes in).
    flagged = {problem.key for problem in problems}
    for key, message in value_problems(values, _trainer_values(contract)).items():
        if key not in flagged and key in arguments and not arguments[key].choices:
            problems.append(Problem("error", file, key, message))
    if values.get("xformers") is True:
        problems.append(Problem("error", file, "xformers",
                                "xformers is not supported on the target GPUs (RTX 50-series); "
                                "set xformers = false and sdpa = true"))
    return problems


def _trainer_values(contract: Contract) -> TrainerValues:
    live = contract.source.removeprefix("live:") if contract.source.startswith("live:") else None
    return trainer_values_for(Path(live) if live else None)


# Numbers sd-scripts takes without a word but cannot train with (a rank of 0, a negative learning rate, no
# epochs); every other number must at least be finite (TOML and --set both spell nan and inf).
_TRAINING_RANGES: dict[str, tuple[float, str]] = {
    **{name: (1, "a whole number >= 1") for name in (
        "network_dim", "train_batch_size", "max_train_epochs", "max_train_steps", "gradient_accumulation_steps",
        "save_every_n_epochs", "sample_every_n_epochs", "save_every_n_steps", "sample_every_n_steps")},
    **{name: (0, "a number >= 0") for name in (
        "learning_rate", "unet_lr", "text_encoder_lr", "network_alpha", "network_dropout", "lr_warmup_steps",
        "min_snr_gamma", "noise_offset", "max_grad_norm", "max_data_loader_n_workers", "seed")},
}
_DATASET_RANGES: dict[str, tuple[float, str]] = {
    name: (1, "a whole number >= 1 (or a list of them)") for name in ("resolution", "batch_size", "num_repeats")}


def _range_problem(key: str, value: Any, ranges: Mapping[str, tuple[float, str]]) -> str | None:
    numbers = [item for item in (value if isinstance(value, list) else [value])
               if isinstance(item, (int, float)) and not isinstance(item, bool)]
    if any(not math.isfinite(number) for number in numbers):
        return f"must be a finite number, got {value!r}"
    if key in ranges and any(number < ranges[key][0] for number in numbers):
        return f"must be {ranges[key][1]}, got {value!r}"
    return None


def _matches_schema_type(value: Any, description: str) -> bool:
    for alternative in (part.strip() for part in description.split("|")):
        if alternative.startswith("["):
            inner = [p.strip() for p in alternative.strip("[]").split(",")]
            if isinstance(value, list) and len(value) == len(inner) and all(
                _matches_schema_type(v, t) for v, t in zip(value, inner, strict=True)
            ):
                return True
        elif alternative == "int" and _is_int(value):
            return True
        elif alternative == "float" and isinstance(value, float):
            return True
        elif alternative == "bool" and isinstance(value, bool):
            return True
        elif alternative == "str" and isinstance(value, str):
            return True
        elif alternative == "dict" and isinstance(value, dict):
            return True
        elif alternative not in ("int", "float", "bool", "str", "dict"):
            return True  # a validator we do not model: let sd-scripts judge it
    return False


def _level_hint(key: str, schema: DatasetSchema) -> str:
    levels = [name for name, table in (("[general]", schema.general), ("[[datasets]]", schema.dataset),
                                       ("[[datasets.subsets]]", schema.subset)) if key in table]
    if levels:
        return f"not allowed here; allowed in {' and '.join(levels)}"
    everything = {*schema.general, *schema.dataset, *schema.subset}
    return f"unknown dataset key{_suggest(key, everything) or ''}"


def _check_table(table: Mapping[str, Any], allowed: Mapping[str, str], level: str, file: Path | None,
                 schema: DatasetSchema) -> list[Problem]:
    problems = []
    for key, value in table.items():
        name = f"{level}.{key}"
        if key not in allowed:
            problems.append(Problem("error", file, name, _level_hint(key, schema)))
        elif not _matches_schema_type(value, allowed[key]):
            hint = " (write 0.0, not 0)" if allowed[key] == "float" and _is_int(value) else ""
            problems.append(Problem("error", file, name,
                                    f"expected {allowed[key]}, got {type(value).__name__} {value!r}{hint}"))
        elif (range_problem := _range_problem(key, value, _DATASET_RANGES)) is not None:
            problems.append(Problem("error", file, name, range_problem))
    return problems


def check_dataset_config(config: Mapping[str, Any], schema: DatasetSchema, *,
                         file: Path | None = None) -> list[Problem]:
    """The dataset TOML: only [general] and [[datasets]] at the top, each key at a level that allows it."""
    problems: list[Problem] = []
    for key in config:
        if key not in ("general", "datasets"):
            problems.append(Problem("error", file, key,
                                    "only [general] and [[datasets]] are allowed at the top level"))
    general = config.get("general", {})
    if not isinstance(general, dict):
        problems.append(Problem("error", file, "general", "must be a table"))
    else:
        problems += _check_table(general, schema.general, "general", file, schema)
    datasets = config.get("datasets", [])
    if not isinstance(datasets, list) or not datasets:
        problems.append(Problem("error", file, "datasets", "needs at least one [[datasets]] table"))
        return problems
    for index, dataset in enumerate(datasets):
        subsets = dataset.get("subsets", [])
        body = {k: v for k, v in dataset.items() if k != "subsets"}
        problems += _check_table(body, schema.dataset, f"datasets[{index}]", file, schema)
        if not subsets:
            problems.append(Problem("error", file, f"datasets[{index}].subsets",
                                    "needs at least one [[datasets.subsets]] with image_dir"))
        for sub_index, subset in enumerate(subsets):
            level = f"datasets[{index}].subsets[{sub_index}]"
            problems += _check_table(subset, schema.subset, level, file, schema)
            if "image_dir" not in subset:
                problems.append(Problem("error", file, f"{level}.image_dir", "missing"))
    return problems


def check_paths(training: Mapping[str, Any], dataset: Mapping[str, Any] | None, *,
                training_file: Path | None = None, dataset_file: Path | None = None) -> list[Problem]:
    """Paths that must exist before launch: model (unless a hub id), dataset folders, prompt file."""
    problems: list[Problem] = []
    model = training.get("pretrained_model_name_or_path")
    if not model:
        problems.append(Problem("error", training_file, "pretrained_model_name_or_path", "missing"))
    elif _looks_local(model) and not Path(model).exists():
        problems.append(Problem("error", training_file, "pretrained_model_name_or_path",
                                f"path does not exist: {model}"))
    for key in EXISTING_PATH_ARGUMENTS:
        value = training.get(key)
        for item in value if isinstance(value, list) else [value]:  # base_weights is a list of files
            if isinstance(item, str) and item and not Path(item).exists():
                problems.append(Problem("error", training_file, key, f"path does not exist: {item}"))
            elif key == "sample_prompts" and isinstance(item, str) and Path(item).is_file():
                if (prompt_problem := prompt_file_problem(Path(item))) is not None:
                    problems.append(Problem("error", training_file, key, f"{item}: {prompt_problem}"))
    for index, dataset_table in enumerate((dataset or {}).get("datasets", [])):
        for sub_index, subset in enumerate(dataset_table.get("subsets", [])):
            image_dir = subset.get("image_dir")
            if isinstance(image_dir, str) and not Path(image_dir).is_dir():
                problems.append(Problem("error", dataset_file,
                                        f"datasets[{index}].subsets[{sub_index}].image_dir",
                                        f"folder does not exist: {image_dir} (sd-scripts would find no data "
                                        "and still exit 0)"))
    return problems


def _looks_local(model: str) -> bool:
    """``org/name`` with no such local path is a hub id; anything else is a local path."""
    parts = model.split("/")
    is_hub_id = len(parts) == 2 and all(parts) and not model.startswith((".", "~")) and not Path(model).exists()
    return not is_hub_id


def errors(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]
