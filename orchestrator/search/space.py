"""The search space: typed parameter specs read from a TOML file, and how a trial samples them.

A space file has ``[parameters.NAME]`` tables (one Optuna distribution each) and ``[derived.NAME]``
tables that compute kohya arguments from sampled values (``network_alpha = int(dim x ratio)``).
An optional ``[validation]`` table (``split``, optional ``seed``) gives every trial the same validation
split, so each sample epoch also reports the trainer's validation loss on the same held-out images. It
is fixed, never searched: a different split is a different training set, and scores would no longer
compare. See ``configs/search/luca_tpe_v2_1.toml`` for the format.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from orchestrator.common.errors import UserInputError
from orchestrator.common.tomlfile import read_toml

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

Scalar = int | float | str | bool
ParamKind = Literal["categorical", "float", "int"]
DerivedRule = Literal["int_product", "copy"]


class SupportsSuggest(Protocol):
    """The part of ``optuna.Trial`` a space needs (so the core does not import Optuna)."""

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...
    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float: ...
    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...


@dataclass(frozen=True)
class ParamSpec:
    name: str
    kind: ParamKind
    choices: tuple[Scalar, ...] = ()
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    log: bool = False
    helper: bool = False  # feeds a derived value only; never passed to the trainer

    def suggest(self, trial: SupportsSuggest) -> Scalar:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1),
                                     log=self.log)
        value = trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)
        # A stepped float comes back as 0.30000000000000004; keep the grid value the user wrote.
        return round(value, 10) if self.step else value

    def distribution(self) -> BaseDistribution:
        """The Optuna distribution :meth:`suggest` records (Optuna is imported here, so that reading a
        space file needs none)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "categorical":
            return CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return FloatDistribution(self.low, self.high, step=self.step, log=self.log)

    def ends(self) -> list[Scalar]:
        """Every choice, or the two bounds (whole numbers for an int parameter)."""
        if self.kind == "categorical":
            return list(self.choices)
        return [int(self.low), int(self.high)] if self.kind == "int" else [self.low, self.high]

    def grid(self) -> list[Scalar] | None:
        """Every value the parameter can take (its choices, or each step from low to high); None when
        the range is continuous."""
        if self.kind == "categorical":
            return list(self.choices)
        if not self.step:
            return None
        count = int(round((self.high - self.low) / self.step))
        return [self._whole(round(self.low + index * self.step, 10)) for index in range(count + 1)]

    def snap(self, value: float) -> Scalar:
        """The value of the range nearest ``value``: clipped into [low, high], on the step grid (whole
        numbers for an int parameter). A numeric range only."""
        step = self.step or (1.0 if self.kind == "int" else None)
        if step:
            value = round(self.low + round((value - self.low) / step) * step, 10)
        return self._whole(min(max(value, self.low), self.high))

    def fit(self, value: Any) -> tuple[Scalar | None, str | None]:
        """``value`` as this parameter records it (the choice itself, the grid value), or why it does not fit:
        not a choice, not a number, outside [low, high], off the step grid."""
        if self.kind == "categorical":
            match = next((choice for choice in self.choices if same_value(choice, value)), None)
            if match is None:
                return None, f"{self.name} = {value!r} is not one of {list(self.choices)}"
            return match, None
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None, f"{self.name} = {value!r} is not a number"
        if not (self.low - 1e-12 * abs(self.low) <= number <= self.high + 1e-12 * abs(self.high)):
            return None, f"{self.name} = {value} is outside [{self.low:g}, {self.high:g}]"
        if self.step:
            on_grid = round(self.low + round((number - self.low) / self.step) * self.step, 10)
            if not math.isclose(on_grid, number, rel_tol=1e-9, abs_tol=1e-9 * self.step):
                return None, f"{self.name} = {value} is not on the space's {self.step:g} grid"
            number = on_grid
        return self._whole(min(max(number, self.low), self.high)), None

    def _whole(self, number: float) -> Scalar:
        return int(round(number)) if self.kind == "int" else number


def same_value(a: Any, b: Any) -> bool:
    """5 == 5.0 and 8e-5 == 8.000000001e-5; a string only equals the same string."""
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class DerivedSpec:
    name: str
    rule: DerivedRule
    of: tuple[str, ...]

    def compute(self, values: Mapping[str, Scalar]) -> Scalar:
        if self.rule == "copy":
            return values[self.of[0]]
        product = math.prod(float(values[name]) for name in self.of)
        # int() of the exact product: round first so that 64 x 0.75 = 47.99999 does not become 47.
        return int(round(product, 6))


@dataclass(frozen=True)
class SearchSpace:
    name: str
    description: str
    parameters: tuple[ParamSpec, ...]
    derived: tuple[DerivedSpec, ...]
    source: Path | None = None
    # Presets tried first (``[warm_start] presets``, see warm_start.py). Not part of ``to_data``: they are
    # enqueued once when the study is created, and a worker joining it never needs them.
    warm_start_presets: tuple[str, ...] = ()
    # ``[validation]``: the share of each image folder every trial holds out (None: no validation) and its
    # seed (None: the renderer uses the base preset's training seed).
    validation_split: float | None = None
    validation_seed: int | None = None

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.parameters)

    def sample(self, trial: SupportsSuggest) -> dict[str, Scalar]:
        """Ask ``trial`` for every parameter, in file order (the order Optuna records them)."""
        return {spec.name: spec.suggest(trial) for spec in self.parameters}

    def training_overrides(self, params: Mapping[str, Scalar]) -> dict[str, Scalar]:
        """The kohya arguments a trial sets: sampled values minus helpers, plus derived values."""
        overrides = {name: value for name, value in params.items() if not self._is_helper(name)}
        for spec in self.derived:
            overrides[spec.name] = spec.compute(params)
        if self.validation_split is not None:
            overrides["dataset.validation_split"] = self.validation_split
            if self.validation_seed is not None:
                overrides["dataset.validation_seed"] = self.validation_seed
        return overrides

    def to_data(self) -> dict[str, Any]:
        """The space in its file format (stored in the study so that a worker elsewhere can load it)."""
        parameters: dict[str, dict[str, Any]] = {}
        for spec in self.parameters:
            table: dict[str, Any] = {"kind": spec.kind}
            if spec.kind == "categorical":
                table["choices"] = list(spec.choices)
            else:
                table.update(low=spec.low, high=spec.high, log=spec.log)
                if spec.step is not None:
                    table["step"] = spec.step
            if spec.helper:
                table["helper"] = True
            parameters[spec.name] = table
        data: dict[str, Any] = {
            "search": {"name": self.name, "description": self.description},
            "parameters": parameters,
            "derived": {spec.name: {"rule": spec.rule, "of": list(spec.of)} for spec in self.derived},
        }
        if self.validation_split is not None:  # absent otherwise: studies made before it still resume
            data["validation"] = {"split": self.validation_split}
            if self.validation_seed is not None:
                data["validation"]["seed"] = self.validation_seed
        return data

    def max_value(self, name: str, default: float) -> float:
        """The largest value ``name`` can take in this space (``default`` when it is not searched)."""
        for spec in self.parameters:
            if spec.name == name:
                return float(max(spec.choices)) if spec.kind == "categorical" else spec.high
        return default

    def _is_helper(self, name: str) -> bool:
        return any(spec.name == name and spec.helper for spec in self.parameters)


def load_search_space(path: str | Path) -> SearchSpace:
    path = Path(path)
    if not path.is_file():
        raise UserInputError("search space file not found", path=path)
    return parse_search_space(read_toml(path), source=path)


# Top-level tables a space file may have ([prior] is read by prior.prior_named_in); anything else is a typo
# ([paramters.x]) that would otherwise drop a parameter from the search without a word.
_TABLES = {"search", "parameters", "derived", "validation", "warm_start", "prior"}
# Keys of one [parameters.NAME] table, per kind.
_PARAM_KEYS = {"categorical": {"kind", "choices", "helper"},
               "float": {"kind", "low", "high", "step", "log", "helper"},
               "int": {"kind", "low", "high", "step", "log", "helper"}}


def parse_search_space(data: Mapping[str, Any], *, source: Path | None = None) -> SearchSpace:
    unknown = sorted(set(data) - _TABLES)
    if unknown:
        raise UserInputError(f"unknown table; allowed: {sorted(_TABLES)}", path=source, key=unknown[0])
    for table in ("search", "derived", "warm_start"):
        if not isinstance(data.get(table, {}), dict):
            raise UserInputError("must be a table", path=source, key=table)
    meta = data.get("search", {})
    tables = data.get("parameters")
    if not isinstance(tables, dict) or not tables:
        raise UserInputError("a search space needs at least one [parameters.NAME] table", path=source,
                             key="parameters")
    parameters = tuple(_parse_param(name, table, source) for name, table in tables.items())
    names = {spec.name for spec in parameters}
    derived = tuple(
        _parse_derived(name, table, names, source) for name, table in data.get("derived", {}).items()
    )
    warm_start = data.get("warm_start", {})
    presets = warm_start.get("presets", [])
    if not isinstance(presets, list) or not all(isinstance(name, str) and name for name in presets):
        raise UserInputError("must be a list of preset names or files", path=source, key="warm_start.presets")
    split, seed = _parse_validation(data.get("validation"), names, source)
    return SearchSpace(
        name=str(meta.get("name", source.stem if source else "search")),
        description=str(meta.get("description", "")),
        parameters=parameters,
        derived=derived,
        source=source,
        warm_start_presets=tuple(presets),
        validation_split=split,
        validation_seed=seed,
    )


_VALIDATION_KEYS = {"split", "seed"}


def _parse_validation(table: Any, names: set[str], source: Path | None) -> tuple[float | None, int | None]:
    if table is None:
        return None, None
    if not isinstance(table, dict):
        raise UserInputError("must be a table with `split` (and optionally `seed`)", path=source, key="validation")
    unknown = sorted(set(table) - _VALIDATION_KEYS)
    if unknown:
        raise UserInputError(f"unknown key; allowed: {sorted(_VALIDATION_KEYS)}", path=source,
                             key=f"validation.{unknown[0]}")
    split, seed = table.get("split"), table.get("seed")
    if isinstance(split, bool) or not isinstance(split, (int, float)) or not 0.0 <= split < 1.0:
        raise UserInputError(f"must be a share of the images in [0, 1), got {split!r}", path=source,
                             key="validation.split")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise UserInputError(f"must be a whole number, got {seed!r}", path=source, key="validation.seed")
    searched = sorted(names & {"validation_split", "validation_seed"})
    if searched:
        raise UserInputError("the validation split is fixed by [validation], not searched: a different split "
                             "is a different training set", path=source, key=f"parameters.{searched[0]}")
    if split == 0.0:
        return None, None  # written out to say "off" explicitly
    return float(split), seed


def _parse_param(name: str, table: Any, source: Path | None) -> ParamSpec:
    key = f"parameters.{name}"
    if not isinstance(table, dict):
        raise UserInputError("must be a table", path=source, key=key)
    if name == "output_name":  # every trial is named trial_NNNN in its own folder; a name is no parameter
        raise UserInputError("output_name cannot be searched: each trial is named trial_NNNN", path=source,
                             key=key)
    kind = table.get("kind")
    if kind not in _PARAM_KEYS:
        raise UserInputError(f"kind must be categorical, float or int, got {kind!r}", path=source,
                             key=f"{key}.kind")
    unknown = sorted(set(table) - _PARAM_KEYS[kind])
    if unknown:
        raise UserInputError(f"unknown key for a {kind} parameter; allowed: {sorted(_PARAM_KEYS[kind])}",
                             path=source, key=f"{key}.{unknown[0]}")
    helper, log = (_flag(table, flag, f"{key}.{flag}", source) for flag in ("helper", "log"))
    if kind == "categorical":
        choices = table.get("choices")
        if not isinstance(choices, list) or not choices:
            raise UserInputError("a categorical parameter needs a non-empty `choices` list", path=source,
                                 key=f"{key}.choices")
        _check_choices(choices, f"{key}.choices", source)
        return ParamSpec(name, "categorical", choices=tuple(choices), helper=helper)
    low, high = (_bound(table.get(end), kind, f"{key}.{end}", source) for end in ("low", "high"))
    step = table.get("step")
    if step is not None:
        step = _bound(step, kind, f"{key}.step", source)
        if step <= 0:
            raise UserInputError(f"step must be above 0, got {step!r}", path=source, key=f"{key}.step")
    if not low < high:
        raise UserInputError(f"low ({low}) must be below high ({high})", path=source, key=key)
    if log and (low <= 0 or step is not None):
        raise UserInputError("log = true needs low > 0 and no step", path=source, key=key)
    return ParamSpec(name, kind, low=float(low), high=float(high), step=float(step) if step is not None else None,
                     log=log, helper=helper)


def _flag(table: Mapping[str, Any], name: str, key: str, source: Path | None) -> bool:
    value = table.get(name, False)
    if not isinstance(value, bool):  # log = "false" is a true string: refuse it rather than guess
        raise UserInputError(f"must be true or false, got {value!r}", path=source, key=key)
    return value


def _bound(value: Any, kind: str, key: str, source: Path | None) -> float:
    """``low``, ``high`` or ``step``: a finite number; a whole number for an int parameter."""
    whole = isinstance(value, int) and not isinstance(value, bool)
    # A study stores an int parameter's bounds as floats (8.0): a whole float is still a whole number.
    whole = whole or (isinstance(value, float) and value.is_integer())
    if kind == "int" and not whole:
        raise UserInputError(f"an int parameter needs a whole number, got {value!r}", path=source, key=key)
    if not whole and not (isinstance(value, float) and math.isfinite(value)):
        raise UserInputError(f"needs a finite number, got {value!r}", path=source, key=key)
    return value


def _check_choices(choices: list[Any], key: str, source: Path | None) -> None:
    """Choices are distinct scalars of one sort (numbers, strings or true/false): Optuna stores nothing
    else, and ``[64, "big"]`` is a typo that would only fail when a trial draws it."""
    for choice in choices:
        if not isinstance(choice, (bool, int, float, str)) or (isinstance(choice, float) and not math.isfinite(choice)):
            raise UserInputError(f"each choice must be a finite number, a string or true/false, got {choice!r}",
                                 path=source, key=key)
    sorts = {"bool" if isinstance(c, bool) else "str" if isinstance(c, str) else "number" for c in choices}
    if len(sorts) > 1:
        raise UserInputError(f"choices mix {' and '.join(sorted(sorts))}s: {choices!r}", path=source, key=key)
    seen: list[Any] = []
    for choice in choices:
        if choice in seen:
            raise UserInputError(f"choice {choice!r} is listed twice", path=source, key=key)
        seen.append(choice)


def _parse_derived(name: str, table: Any, names: set[str], source: Path | None) -> DerivedSpec:
    key = f"derived.{name}"
    if not isinstance(table, dict):
        raise UserInputError("must be a table", path=source, key=key)
    rule, of = table.get("rule"), table.get("of")
    if rule not in ("int_product", "copy"):
        raise UserInputError(f"rule must be int_product or copy, got {rule!r}", path=source, key=f"{key}.rule")
    if not isinstance(of, list) or not of or (rule == "copy" and len(of) != 1):
        raise UserInputError("`of` must list the parameters it uses (one for copy)", path=source,
                             key=f"{key}.of")
    if name in names:
        raise UserInputError("is both searched ([parameters]) and derived; keep one", path=source, key=key)
    missing = [item for item in of if item not in names]
    if missing:
        raise UserInputError(f"uses unknown parameters {missing}", path=source, key=f"{key}.of")
    return DerivedSpec(name, rule, tuple(str(item) for item in of))
