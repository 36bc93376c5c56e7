"""Warm start: known-good configurations are the study's first trials, before TPE's random start-up.

An experienced trainer does not begin a search from random points when a config that already works
is at hand: the search space file names reference presets (``[warm_start] presets``), and the base
preset counts too. Each is expressed as the space's parameters (a helper such as
``network_alpha_ratio`` is the grid value that reproduces the preset's ``network_alpha``); a preset
with a value the space cannot take is skipped with a note saying which one, never bent into the space.
The points are enqueued once, when the study is created (``study.py``), and go through the safety
rules like every other trial.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.search.merge import flatten_training_tables
from orchestrator.search.space import DerivedSpec, ParamSpec, Scalar, SearchSpace, same_value


@dataclass(frozen=True)
class WarmStartPoint:
    name: str  # the preset it comes from
    params: dict[str, Scalar]  # one value per space parameter, as Optuna will record them


@dataclass
class WarmStartPlan:
    points: list[WarmStartPoint] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why a preset was skipped


def express_in_space(space: SearchSpace, flat: Mapping[str, Any]) -> tuple[dict[str, Scalar], list[str]]:
    """The space parameters that reproduce the flat kohya config ``flat``, and every reason they cannot
    (a value outside the space, a missing argument, a derived argument the parameters do not give)."""
    params: dict[str, Scalar] = {}
    problems: list[str] = []
    for spec in space.parameters:
        if spec.helper:
            value, problem = _helper_value(space, spec, flat)
        elif spec.name not in flat:
            value, problem = None, f"does not set {spec.name}"
        else:
            value, problem = spec.fit(flat[spec.name])
        if problem:
            problems.append(problem)
        elif value is not None:
            params[spec.name] = value
    if not problems:
        for name, derived in space.training_overrides(params).items():
            if name in flat and name not in params and not same_value(derived, flat[name]):
                problems.append(f"{name} = {flat[name]} is not what the space derives ({derived})")
    return params, problems


def plan_warm_start(space: SearchSpace, presets: Sequence[tuple[str, Mapping[str, Any]]]) -> WarmStartPlan:
    """Points for ``(name, preset tables)`` pairs, in order, without duplicates."""
    plan = WarmStartPlan()
    for name, tables in presets:
        params, problems = express_in_space(space, flatten_training_tables(tables))
        if problems:
            plan.notes.append(f"warm start: {name} is not in the search space ({'; '.join(problems)}); skipped")
        elif any(point.params == params for point in plan.points):
            continue
        else:
            plan.points.append(WarmStartPoint(name, params))
    return plan


def load_warm_start(space: SearchSpace, root: Path | None, *,
                    base: tuple[str, Mapping[str, Any]] | None = None) -> WarmStartPlan:
    """The base preset (if given) and the presets the space file names, read from ``configs/training``."""
    from orchestrator.common.tomlfile import read_toml
    from orchestrator.config.presets import resolve_preset_path

    presets: list[tuple[str, Mapping[str, Any]]] = [base] if base is not None else []
    for name in space.warm_start_presets:
        presets.append((name, read_toml(resolve_preset_path(name, root))))
    return plan_warm_start(space, presets)


def _helper_value(space: SearchSpace, spec: ParamSpec, flat: Mapping[str, Any]) -> tuple[Scalar | None, str | None]:
    """A helper is not a kohya argument: find the value that makes its derived argument equal the preset's."""
    derived = next((d for d in space.derived if spec.name in d.of), None)
    if derived is None or derived.name not in flat:
        return None, f"does not set {derived.name if derived else spec.name}"
    target = flat[derived.name]
    if derived.rule == "copy":
        return spec.fit(target)
    others: dict[str, Scalar] = {}
    for name in derived.of:
        if name != spec.name:
            if name not in flat:
                return None, f"does not set {name}"
            others[name] = flat[name]
    for candidate in _candidates(spec, derived, others, target):
        if same_value(derived.compute({**others, spec.name: candidate}), target):
            return candidate, None
    return None, f"no {spec.name} in the space gives {derived.name} = {target}"


def _candidates(spec: ParamSpec, derived: DerivedSpec, others: Mapping[str, Scalar], target: Any) -> list[Scalar]:
    grid = spec.grid()
    if grid is not None:
        return grid
    product = math.prod(float(value) for value in others.values())
    fitted, _ = spec.fit(float(target) / product) if product else (None, None)
    return [fitted] if fitted is not None else []
