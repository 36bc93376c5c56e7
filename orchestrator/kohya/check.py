"""Check rendered runs and hand-written sd-scripts TOML files before any GPU time is spent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.common.errors import UserInputError
from orchestrator.common.tomlfile import read_toml
from orchestrator.kohya.contract import Contract, recorded_contract
from orchestrator.kohya.families import (
    BASE_MODEL_ARGUMENT,
    FAMILIES,
    ModelFamily,
    family_named,
    family_of_argv,
)
from orchestrator.kohya.model_files import require_model_family
from orchestrator.kohya.render import HEADER_PATTERN, RenderedRun
from orchestrator.kohya.validate import (
    Problem,
    check_dataset_config,
    check_paths,
    check_training_arguments,
)


def validate_rendered(rendered: RenderedRun, *, contract: Contract | None = None,
                      paths_must_exist: bool = True) -> list[Problem]:
    contract = contract or recorded_contract()
    problems = check_training_arguments(rendered.training, rendered.script_name, contract,
                                        file=rendered.config_file)
    problems += check_dataset_config(rendered.dataset, contract.dataset_schema,
                                     file=rendered.dataset_config_file)
    if paths_must_exist:
        family = family_named(rendered.family, path=rendered.config_file, key="family")
        problems += model_input_problems(family, rendered.training, file=rendered.config_file)
        # A base model judged just above (unset, or a file-only one) is not reported twice by check_paths.
        training = {k: v for k, v in rendered.training.items() if k != "dataset_config"}
        if family.base_model.file_only or not training.get(BASE_MODEL_ARGUMENT):
            training[BASE_MODEL_ARGUMENT] = _ALREADY_CHECKED
        if isinstance(prompts := rendered.training.get("sample_prompts"), str) and Path(prompts).is_file():
            problems += sample_prompt_problems(family, Path(prompts), file=rendered.config_file)
        problems += check_paths(training, rendered.dataset, training_file=rendered.config_file,
                                dataset_file=rendered.dataset_config_file)
    return problems


_ALREADY_CHECKED = "already/checked"  # a hub-id shape: check_paths lets it pass


def sample_prompt_problems(family: ModelFamily, prompts: Path, *, file: Path | None = None) -> list[Problem]:
    """A warning per sample-prompt option the family's sampler does not read (``--g`` on SD1.5, ``--ss`` on
    FLUX.1): the sample images would silently differ from what the prompt file asks."""
    unread: dict[str, int] = {}
    lines = prompts.read_text(encoding="utf-8", errors="replace").splitlines()
    kept = [line for line in lines if line.strip() and not line.startswith("#")]
    for number, line in enumerate(kept, start=1):
        for part in line.split(" --")[1:]:
            option = part.split(" ", 1)[0].lower()
            if option and option not in family.sample_options:
                unread.setdefault(option, number)
    return [Problem("warning", file, "sample_prompts", (
        f"{prompts}: --{option} (first on prompt {number}) is not read by {family.label}'s sampler, which reads "
        + ", ".join(f"--{o}" for o in family.sample_options))) for option, number in unread.items()]


def model_input_problems(family: ModelFamily, training: dict[str, Any], *, file: Path | None = None) -> list[Problem]:
    """Every model file ``family`` needs is set, exists, and (for the base model) is not another family's.

    A missing one names its key in configs/paths.toml, where machine paths live. Whether an SD1.5/SDXL base
    model is a hub id or a missing path is check_paths'; FLUX.1, Chroma and SD3.5 read local files only.
    """
    problems = []
    for model in family.models:
        value = training.get(model.argument)
        if not value:
            problems.append(Problem("error", file, model.argument, (
                f"{family.label} needs {model.what}: set `{model.paths_key}` in configs/paths.toml (or "
                f"configs/paths.local.toml, or LORA_PIPELINE_{model.paths_key.upper()})")))
            continue
        local = Path(str(value)).expanduser()
        if model.file_only and not local.is_file():
            problems.append(Problem("error", file, model.argument, (
                f"{'is a folder, not a file' if local.is_dir() else 'does not exist'}: {value} ({model.what}; "
                f"configs/paths.toml key `{model.paths_key}`)")))
        elif model.argument == BASE_MODEL_ARGUMENT and local.exists():
            try:
                require_model_family(local, family, key=model.paths_key)
            except UserInputError as error:
                problems.append(Problem("error", file, model.argument, str(error)))
    return problems


def _load(path: Path) -> tuple[dict[str, Any], str]:
    """The document and its text (the render header, a comment, names the model family)."""
    return read_toml(path), path.read_text(encoding="utf-8", errors="replace")


def flatten_training_config(document: dict[str, Any], file: Path) -> tuple[dict[str, Any], list[Problem]]:
    """Flatten tables one level, the way sd-scripts reads ``--config_file``; report clashing keys."""
    flat: dict[str, Any] = {}
    problems: list[Problem] = []
    for key, value in document.items():
        items = value.items() if isinstance(value, dict) else [(key, value)]
        for inner_key, inner_value in items:
            if isinstance(inner_value, dict):
                problems.append(Problem("error", file, f"{key}.{inner_key}",
                                        "tables nest one level only in an sd-scripts config file"))
                continue
            if inner_key in flat:
                problems.append(Problem("error", file, inner_key,
                                        "set in two tables; sd-scripts would keep only one silently"))
            flat[inner_key] = inner_value
    return flat, problems


def infer_family(flat: dict[str, Any], text: str, contract: Contract) -> str:
    """The render header's family, else the family whose extra model files (``t5xxl``, ``ae``...) and fixed
    ``model_type`` the file sets (the one with most such files first), else SDXL or SD1.5 by their keys."""
    if header := HEADER_PATTERN.search(text):
        return header["family"]
    by_models = sorted(FAMILIES.values(), key=lambda f: -len(f.models))
    for family in by_models:
        extra = [m.argument for m in family.models if m.argument != BASE_MODEL_ARGUMENT]
        model_type = family.fixed_arguments.get("model_type")
        if extra and all(flat.get(a) for a in extra) and flat.get("model_type", model_type) == model_type:
            return family.name
    sdxl_only = set(contract.arguments_of("sdxl_train_network.py")) - set(contract.arguments_of("train_network.py"))
    model = str(flat.get("pretrained_model_name_or_path", "")).lower()
    return "sdxl" if sdxl_only & set(flat) or "xl" in model else "sd15"


def family_of_command(argv: list[str]) -> str | None:
    """The family of a recorded trainer argv: its rendered config's header when the file is still there
    (the only place that tells Chroma from FLUX.1: both run flux_train_network.py with --config_file), else
    the script and ``--model_type``."""
    items = [str(a) for a in argv]
    if "--config_file" in items[:-1]:
        try:
            text = Path(items[items.index("--config_file") + 1]).read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        header = HEADER_PATTERN.search(text[:1000])
        if header and header["family"] in FAMILIES:
            return header["family"]
    family = family_of_argv(items)
    return family.name if family else None


def check_config_file(path: Path, *, family: str | None = None, contract: Contract | None = None,
                      paths_must_exist: bool = True) -> list[Problem]:
    """Check an sd-scripts TOML: a dataset config (``[general]``/``[[datasets]]``) or a training config.

    A training config that names a ``dataset_config`` has that file checked too.
    """
    contract = contract or recorded_contract()
    path = Path(path)
    document, text = _load(path)
    if "datasets" in document or ("general" in document and len(document) <= 2):
        problems = check_dataset_config(document, contract.dataset_schema, file=path)
        if paths_must_exist:
            problems += check_paths({"pretrained_model_name_or_path": "hub/id"}, document, dataset_file=path)
        return problems
    flat, problems = flatten_training_config(document, path)
    script = family_named(family or infer_family(flat, text, contract), path=path, key="family").training_script
    problems += check_training_arguments(flat, script, contract, file=path)
    dataset_document = None
    dataset_path = flat.get("dataset_config")
    if isinstance(dataset_path, str) and Path(dataset_path).is_file():
        dataset_document, _ = _load(Path(dataset_path))
        problems += check_dataset_config(dataset_document, contract.dataset_schema, file=Path(dataset_path))
    if paths_must_exist:
        problems += check_paths(flat, dataset_document, training_file=path,
                                dataset_file=Path(dataset_path) if isinstance(dataset_path, str) else None)
    return problems
