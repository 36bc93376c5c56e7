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
SCHEDULE_FREE_SUFFIX = "schedulefree"  # get_scheduler_fix gives these optimizers a dummy scheduler


@dataclass(frozen=True)
class TrainerValues:
    schedulers: tuple[str, ...]
    scheduler_prefixes: tuple[str, ...]
    optimizers: tuple[str, ...]  # sd-scripts' own names, compared case-insensitively
    torch_optimizers: tuple[str, ...]
    torch_schedulers: tuple[str, ...]
    source: str


@lru_cache(maxsize=1)
def recorded_trainer_values() -> TrainerValues:
    data = json.loads(_RECORD.read_text(encoding="utf-8"))
    return TrainerValues(schedulers=tuple(data["lr_scheduler"]), scheduler_prefixes=tuple(data["lr_scheduler_prefixes"]),
                         optimizers=tuple(data["optimizer_type"]), torch_optimizers=tuple(data["torch_optimizers"]),
                         torch_schedulers=tuple(data["torch_lr_schedulers"]), source=str(_RECORD))


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
    except (OSError, UnicodeDecodeError):
        return recorded
    return replace(recorded, optimizers=names, source=str(source)) if names else recorded


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
