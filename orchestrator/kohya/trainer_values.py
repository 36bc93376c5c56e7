"""Names the trainer accepts where sd-scripts' argument parser records no choices.

``--lr_scheduler``, ``--optimizer_type`` and ``--lr_scheduler_type`` are free text to argparse; a typo
(``lr_scheduler = "constnt"``) passes it and fails minutes into the run, when ``get_scheduler_fix`` calls
transformers' ``SchedulerType(name)`` or ``get_optimizer`` finds no class of that name. The names come from
what the trainer itself accepts (``library/train_util.py``): transformers' ``SchedulerType`` values,
diffusers' ``piecewise_constant`` and ``adafactor:LR`` for the scheduler; ``get_optimizer``'s own names
(case-insensitive), else a class of ``torch.optim`` or a dotted ``module.Class`` path for the optimizer.

The shipped record is ``contract_data/trainer_values.json``; when an sd-scripts checkout is there, the
optimizer names are read from its ``library/train_util.py`` instead (they change with sd-scripts, the
scheduler names with transformers).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

_RECORD = resources.files("orchestrator.kohya") / "contract_data" / "trainer_values.json"
_TRAIN_UTIL = Path("library") / "train_util.py"
#: ``get_optimizer`` compares ``optimizer_type.lower()`` with each name it knows this way.
_OPTIMIZER_NAME = re.compile(r'optimizer_type\s*==\s*"(\w+)"\.lower\(\)')
_NETWORK_FACTORY = "def create_network("  # what train_network.py calls on --network_module
SCHEDULE_FREE_SUFFIX = "schedulefree"  # get_scheduler_fix gives these optimizers a dummy scheduler


@dataclass(frozen=True)
class TrainerValues:
    schedulers: tuple[str, ...]
    scheduler_prefixes: tuple[str, ...]
    optimizers: tuple[str, ...]  # sd-scripts' own names, compared case-insensitively
    torch_optimizers: tuple[str, ...]
    torch_schedulers: tuple[str, ...]
    source: str
    network_modules: tuple[str, ...] = ()  # sd-scripts' own networks.* modules that define create_network


@lru_cache(maxsize=1)
def recorded_trainer_values() -> TrainerValues:
    data = json.loads(_RECORD.read_text(encoding="utf-8"))
    return TrainerValues(schedulers=tuple(data["lr_scheduler"]),
                         scheduler_prefixes=tuple(data["lr_scheduler_prefixes"]),
                         optimizers=tuple(data["optimizer_type"]), torch_optimizers=tuple(data["torch_optimizers"]),
                         torch_schedulers=tuple(data["torch_lr_schedulers"]), source=str(_RECORD),
                         network_modules=tuple(data["network_module"]))


def optimizer_names_from_source(text: str) -> tuple[str, ...]:
    return tuple(sorted(set(_OPTIMIZER_NAME.findall(text))))


def trainer_values_for(sd_scripts_dir: Path | None) -> TrainerValues:
    """The recorded values, with the optimizer names of the checkout at ``sd_scripts_dir`` when it has them."""
    recorded = recorded_trainer_values()
    if sd_scripts_dir is None:
        return recorded
    source = Path(sd_scripts_dir) / _TRAIN_UTIL
    try:
        names = optimizer_names_from_source(source.read_text(encoding="utf-8"))
        networks = tuple(sorted(f"networks.{path.stem}" for path in (Path(sd_scripts_dir) / "networks").glob("*.py")
                                if _NETWORK_FACTORY in path.read_text(encoding="utf-8", errors="replace")))
    except (OSError, UnicodeDecodeError):
        return recorded
    live = replace(recorded, optimizers=names, source=str(source)) if names else recorded
    return replace(live, network_modules=networks) if networks else live


def _suggest(value: str, names: tuple[str, ...]) -> str:
    match = difflib.get_close_matches(value.lower(), [n.lower() for n in names], n=1, cutoff=0.6)
    spelled = next((n for n in names if match and n.lower() == match[0]), None)
    return f"; did you mean {spelled!r}?" if spelled else ""


def value_problems(values: Mapping[str, Any], accepted: TrainerValues) -> dict[str, str]:
    """``key -> problem`` for each scheduler or optimizer name the trainer would refuse once it runs."""
    problems: dict[str, str] = {}
    optimizer = values.get("optimizer_type")
    if isinstance(optimizer, str) and optimizer and "." not in optimizer:
        if optimizer.lower() not in {n.lower() for n in accepted.optimizers} | {""} and \
                optimizer not in accepted.torch_optimizers:
            problems["optimizer_type"] = (
                f"{optimizer!r} is no optimizer the trainer knows: one of {', '.join(accepted.optimizers)} (any "
                f"case), a torch.optim class ({', '.join(accepted.torch_optimizers)}) or a module.Class path"
                + _suggest(optimizer, accepted.optimizers + accepted.torch_optimizers))
    network = values.get("network_module")
    if isinstance(network, str) and network.startswith("networks.") and network not in accepted.network_modules:
        problems["network_module"] = (f"{network!r} is no network module of sd-scripts: one of "
                                      f"{', '.join(accepted.network_modules)}"
                                      + _suggest(network, accepted.network_modules))
    scheduler_type = values.get("lr_scheduler_type")
    if isinstance(scheduler_type, str) and scheduler_type:
        if "." not in scheduler_type and scheduler_type not in accepted.torch_schedulers:
            problems["lr_scheduler_type"] = (
                f"{scheduler_type!r} is no class of torch.optim.lr_scheduler ({', '.join(accepted.torch_schedulers)})"
                " nor a module.Class path" + _suggest(scheduler_type, accepted.torch_schedulers))
        return problems  # the trainer then ignores lr_scheduler
    if isinstance(optimizer, str) and optimizer.lower().endswith(SCHEDULE_FREE_SUFFIX):
        return problems
    scheduler = values.get("lr_scheduler")
    if isinstance(scheduler, str) and (problem := _scheduler_problem(scheduler, accepted)):
        problems["lr_scheduler"] = problem
    return problems


def _scheduler_problem(name: str, accepted: TrainerValues) -> str | None:
    if name in accepted.schedulers:
        return None
    for prefix in accepted.scheduler_prefixes:
        if name.startswith(prefix.rstrip(":")):
            try:
                float(name.split(":")[1])
                return None
            except (IndexError, ValueError):
                return f"{name!r}: write it as '{prefix}LR' with the initial learning rate, e.g. '{prefix}1e-3'"
    shapes = ", ".join([*accepted.schedulers, *(f"{p}LR" for p in accepted.scheduler_prefixes)])
    return f"{name!r} is no scheduler the trainer knows: one of {shapes}" + _suggest(name, accepted.schedulers)


#: How sd-scripts' load_prompts reads a --sample_prompts file, by its suffix (any other suffix fails there).
PROMPT_SUFFIXES = (".txt", ".toml", ".json")


def prompt_file_problem(path: Path) -> str | None:
    """Why the trainer would fail on the prompt file ``path`` at its first sample (an epoch in), or None."""
    if path.suffix not in PROMPT_SUFFIXES:
        return f"sd-scripts reads prompt files ending {', '.join(PROMPT_SUFFIXES)} only, not {path.suffix or 'none'!r}"
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return f"cannot be read as UTF-8 text ({error})"
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as error:
            return f"not JSON ({error})"
        return None if isinstance(data, list) else "a JSON prompt file must be a list of prompts"
    if path.suffix == ".toml":
        from orchestrator.common.tomlfile import TOMLDecodeError, parse_toml

        try:
            data = parse_toml(text)
        except TOMLDecodeError as error:
            return f"not TOML ({error})"
        prompt = data.get("prompt")
        if not isinstance(prompt, dict) or not isinstance(prompt.get("subset"), list):
            return "a TOML prompt file needs a [prompt] table with [[prompt.subset]] entries"
    return None
