"""Start a search from a finished one: what a study of another character of the same film carries over.

The guide: "same film = same style = highly reusable hyperparameters", with epochs and repeats adjusted
to the dataset size. ``lora-pipeline search --prior FOLDER`` (a finished search folder) or
``--prior URL --prior-study NAME`` loads that study and carries over two things, nothing else:

* **its best configurations** (:data:`PRIOR_CONFIGS`, distinct once expressed in the new space) are the new
  study's first trials. Each passes the safety rules and is trained and scored *again*: the other
  character's scores never enter this study's objective or values; they are kept beside the trial
  (user attribute ``prior``) only so that ``search analyze`` can say whether the prior held.
* **its good region shapes the first draws**: until the new study has ``prior_sampler.OUTGROW_AFTER``
  trained trials of its own, its other trials are drawn by a TPE fitted on an in-memory shadow study that
  holds the prior's trained trials (re-expressed with the new space's distributions) and the new study's
  own, each as its rank within its study (``prior_sampler.py``). Then the prior is *outgrown*: TPE models
  this study's trials only, as in a study started from nothing, so a misleading prior weighs on those
  first trials only. Measured: ``bench/search_prior.py``.

Dataset-size-dependent parameters: when both studies recorded their training set's size
(``dataset_size.py``: images x repeats per epoch), ``max_train_epochs`` is scaled to keep the images shown
in training comparable (epochs x images x repeats) and set to the nearest value the new space allows; a
scaled value more than a quarter outside the space's range, an unknown size on either side, or a searched
``num_repeats`` leave the parameter to the search (drawn, not carried). Parameters that the prior's space did
not search come from the prior's base preset when it sets them, else from the search.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState

from orchestrator.common.errors import UserInputError
from orchestrator.search.constraints import TrainingChoices, check_constraints
from orchestrator.search.merge import flatten_training_tables, merge_trial_config
from orchestrator.search.results import RESULTS_FILE
from orchestrator.search.space import ParamSpec, Scalar, SearchSpace, parse_search_space
from orchestrator.search.vocabulary import (
    BASE_CONFIG_ATTR,
    DATASET_ATTR,
    OUTCOME_ATTR,
    OVERRIDES_ATTR,
    REJECTED,
    SEARCH_SPACE_ATTR,
)
from orchestrator.search.warm_start import express_in_space

PRIOR_CONFIGS = 2  # the prior's best configs trained first (measured: bench/search_prior.py)
EPOCH_PARAMETERS = ("max_train_epochs",)
REPEAT_PARAMETERS = ("num_repeats",)
OUTSIDE_RANGE = 0.25  # a scaled epoch count this far beyond the space's range is left to the search


@dataclass(frozen=True)
class PriorTrial:
    number: int
    state: TrialState  # COMPLETE, or PRUNED by the pruner (kept for the shadow TPE's "bad" side)
    value: float | None
    flat: dict[str, Any]  # the prior trial's flat kohya arguments (its base preset + its overrides)
    intermediate: dict[int, float]


@dataclass(frozen=True)
class PriorStudy:
    label: str  # the folder or (redacted) URL, for messages
    study_name: str
    trials: tuple[PriorTrial, ...]  # trained ones; complete best first, then pruned
    parameter_names: tuple[str, ...]
    dataset: Mapping[str, int] | None = None

    @property
    def complete(self) -> list[PriorTrial]:
        return [t for t in self.trials if t.state == TrialState.COMPLETE]


@dataclass(frozen=True)
class PriorConfig:
    params: dict[str, Scalar]  # in the new space; a parameter left to the search is absent
    rank: int  # 1 = the prior's best
    trial: int  # its number in the prior study
    score_there: float


@dataclass
class PriorPlan:
    """What a prior study gives a new one: see the module docstring."""

    label: str
    study_name: str
    configs: list[PriorConfig]
    shadow: list[optuna.trial.FrozenTrial]  # the prior's trained trials, in the new space's distributions
    distributions: dict[str, BaseDistribution]
    epochs_rule: str  # how the dataset-size-dependent parameters were handled, in words
    good_region: list[dict[str, Scalar]] = field(default_factory=list)  # the prior's top quarter, new space
    notes: list[str] = field(default_factory=list)

    def config_attrs(self, config: PriorConfig) -> dict[str, Any]:
        return {"kind": "config", "study": self.study_name, "rank": config.rank, "trial": config.trial,
                "score_there": config.score_there}

    def study_attr(self) -> dict[str, Any]:
        """Stored in the new study: what ``search analyze`` needs to tell whether the prior held."""
        return json.loads(json.dumps({
            "source": self.label, "study": self.study_name, "epochs": self.epochs_rule,
            "configs": [self.config_attrs(c) | {"params": c.params} for c in self.configs],
            "shadow_trials": len(self.shadow), "good_region": self.good_region,
            "trials": [{"params": t.params, "value": t.value} for t in self.shadow if t.state == TrialState.COMPLETE],
            # Every shadow trial, pruned ones too: a resume or a worker rebuilds the same prior-shaped sampler.
            "shadow": [{"params": t.params, "state": t.state.name, "value": t.value,
                        "intermediate": {str(step): v for step, v in t.intermediate_values.items()}}
                       for t in self.shadow],
        }))

    def describe(self) -> list[str]:
        """What the new study takes from the prior, for the person starting it."""
        lines = [f"prior: study {self.study_name!r} in {self.label}: {len(self.shadow)} trained trials expressed "
                 f"in this space; {len(self.configs)} of its best configs are trained first (scored again here)",
                 f"prior: {self.epochs_rule}"]
        lines += [f"prior:   config {c.rank} = its trial {c.trial} (score there {c.score_there:.4f})"
                  for c in self.configs]
        return lines + [f"prior: note: {note}" for note in self.notes]


# ------------------------------------------------------------------------------------------------ loading
def load_prior(source: str, study_name: str | None = None) -> PriorStudy:
    """A finished study from a search folder (its SQLite or journal study; the name from ``trial_results.json``
    unless given) or from a storage URL with ``study_name``. Raises :class:`UserInputError` naming the folder
    or URL when it is missing, holds no such study, or has no trained trial."""
    from orchestrator.search.storage import load_study, redact_url, study_url_in

    if "://" in source:
        if not study_name:
            raise UserInputError(f"--prior {redact_url(source)} is a storage URL: name its study with "
                                 "--prior-study NAME", key="prior-study")
        url, label = source, redact_url(source)
    else:
        folder = Path(source)
        if not folder.is_dir():
            raise UserInputError("prior search folder not found", path=folder, key="prior",
                                 hint="the --out folder of a finished `lora-pipeline search`")
        found = study_url_in(folder)
        if found is None:
            raise UserInputError("no optuna_study.db or optuna_journal.log in the prior search folder (a study "
                                 "on PostgreSQL: give --prior URL --prior-study NAME)", path=folder, key="prior")
        study_name = study_name or _study_name_of(folder)
        url, label = found, str(folder)
    prior = prior_from_study(load_study(url, study_name, key="prior", study_key="prior-study"), label)
    if not prior.complete:
        raise UserInputError(f"prior study {study_name!r} in {label} has no completed trial: nothing to carry "
                             "over", key="prior")
    return prior


_PRIOR_KEYS = {"source", "study"}


def prior_named_in(space_file: Path | None, root: Path) -> tuple[str | None, str | None]:
    """``(source, study)`` of a space file's ``[prior]`` table (``source``: a search folder, relative to the
    project ``root``, or a storage URL; ``study``: its study name), ``(None, None)`` without one."""
    if space_file is None:
        return None, None
    from orchestrator.common.tomlfile import read_toml

    table = read_toml(space_file).get("prior")
    if table is None:
        return None, None
    if not isinstance(table, dict) or not isinstance(table.get("source"), str) or not table["source"]:
        raise UserInputError("must be a table with `source` = a search folder or storage URL", path=space_file,
                             key="prior")
    unknown = sorted(set(table) - _PRIOR_KEYS)
    if unknown:
        raise UserInputError(f"unknown key; allowed: {sorted(_PRIOR_KEYS)}", path=space_file, key=f"prior.{unknown[0]}")
    study = table.get("study")
    if study is not None and not isinstance(study, str):
        raise UserInputError("must be a study name", path=space_file, key="prior.study")
    source = table["source"]
    if "://" not in source and not Path(source).is_absolute():
        source = str(root / source)
    return source, study


def _study_name_of(folder: Path) -> str:
    path = folder / RESULTS_FILE
    try:
        name = json.loads(path.read_text(encoding="utf-8"))["study_name"]
    except FileNotFoundError:
        raise UserInputError(f"no {RESULTS_FILE} in the prior search folder to name its study; give "
                             "--prior-study NAME", path=folder, key="prior") from None
    except (ValueError, KeyError, TypeError):
        raise UserInputError("has no study_name; give --prior-study NAME", path=path, key="prior") from None
    return str(name)


def prior_from_study(study: optuna.Study, label: str) -> PriorStudy:
    """The trained trials of ``study`` (complete ones best first, then those the pruner stopped)."""
    attrs = study.user_attrs
    base = flatten_training_tables(attrs.get(BASE_CONFIG_ATTR) or {})
    space_names: tuple[str, ...] = ()
    if "search_space" in attrs:
        space_names = parse_search_space(attrs[SEARCH_SPACE_ATTR]).parameter_names
    trials = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        if trial.user_attrs.get(OUTCOME_ATTR) == REJECTED or (trial.state == TrialState.PRUNED
                                                           and not trial.intermediate_values):
            continue  # never trained: the new study's own rules judge its configs
        flat = {**base, **dict(trial.user_attrs.get(OVERRIDES_ATTR) or {}), **trial.params}
        trials.append(PriorTrial(trial.number, trial.state, trial.value, flat, dict(trial.intermediate_values)))
    trials.sort(key=lambda t: (t.state != TrialState.COMPLETE, -(t.value if t.value is not None else -math.inf)))
    names = space_names or tuple(sorted({name for t in study.trials for name in t.params}))
    return PriorStudy(label, study.study_name, tuple(trials), names, attrs.get(DATASET_ATTR))


# ----------------------------------------------------------------------------------------------- planning
def plan_from_study_attr(attr: Any, space: SearchSpace) -> PriorPlan | None:
    """The prior a study was started with, rebuilt from what it stored (:meth:`PriorPlan.study_attr`).

    A resumed search (without ``--prior``) and a ``search worker`` draw their first trials as the process
    that created the study did. Its configs were enqueued when the study was created, so none are returned.
    None when the study has no prior, or stored one without its shadow trials (made before they were kept).
    """
    if not isinstance(attr, Mapping) or not isinstance(attr.get("shadow"), list):
        return None
    distributions = {spec.name: spec.distribution() for spec in space.parameters}
    plan = PriorPlan(str(attr.get("source", "")), str(attr.get("study", "")), [], [], distributions,
                     str(attr.get("epochs", "")), good_region=[dict(region) for region in attr.get("good_region", [])])
    for stored in attr["shadow"]:
        params = {name: value for name, value in stored["params"].items() if name in distributions}
        if not params:
            continue
        state = TrialState[stored["state"]]
        plan.shadow.append(optuna.trial.create_trial(
            state=state, value=stored["value"] if state == TrialState.COMPLETE else None, params=params,
            distributions={name: distributions[name] for name in params},
            intermediate_values={int(step): v for step, v in stored.get("intermediate", {}).items()}))
    return plan if plan.shadow else None


def plan_prior(prior: PriorStudy, space: SearchSpace, base_config: Mapping[str, Any], *,
               dataset: Mapping[str, int] | None, configs: int = PRIOR_CONFIGS) -> PriorPlan:
    """Express ``prior`` in ``space`` (the new study's, over ``base_config``; ``dataset`` its size)."""
    shared = sorted(set(prior.parameter_names) & set(space.parameter_names))
    if not shared:
        raise UserInputError(f"prior study {prior.study_name!r} in {prior.label} searched "
                             f"{', '.join(prior.parameter_names) or 'nothing'}, none of which is a parameter of "
                             f"the new space ({', '.join(space.parameter_names)})", key="prior",
                             path=space.source)
    scale, epochs_rule = _epoch_scale(prior.dataset, dataset, space)
    distributions = {spec.name: spec.distribution() for spec in space.parameters}
    plan = PriorPlan(prior.label, prior.study_name, [], [], distributions, epochs_rule)
    base_flat = flatten_training_tables(base_config)
    for trial in prior.trials:
        params = _expressed(space, trial.flat, scale)
        if not params:
            continue
        plan.shadow.append(optuna.trial.create_trial(
            state=trial.state, value=trial.value if trial.state == TrialState.COMPLETE else None,
            params=params, distributions={name: distributions[name] for name in params},
            intermediate_values=trial.intermediate))
        if trial.state != TrialState.COMPLETE or len(plan.configs) >= configs:
            continue
        if any(config.params == params for config in plan.configs):
            continue  # two prior trials that the new space cannot tell apart
        if len(params) == len(space.parameters):
            flat = {**flatten_training_tables(merge_trial_config(base_config, space.training_overrides(params))),
                    **params}
            verdict = check_constraints(TrainingChoices.from_flat_config({**base_flat, **flat}))
            if not verdict.accepted:
                plan.notes.append(f"prior trial {trial.number} breaks a safety rule here ({verdict.reason}); "
                                  "not enqueued")
                continue
        plan.configs.append(PriorConfig(params, len(plan.configs) + 1, trial.number, float(trial.value or 0.0)))
    complete = [t for t in plan.shadow if t.state == TrialState.COMPLETE]
    complete.sort(key=lambda t: -(t.value or 0.0))
    plan.good_region = [dict(t.params) for t in complete[:max(1, math.ceil(len(complete) / 4))]]
    if not complete:
        raise UserInputError(f"no completed trial of prior study {prior.study_name!r} in {prior.label} can be "
                             "expressed in the new space", key="prior", path=space.source)
    return plan


def _expressed(space: SearchSpace, flat: Mapping[str, Any], scale: float | None) -> dict[str, Scalar]:
    """The new space's parameters that reproduce ``flat`` (those that fit), epochs scaled or left out."""
    flat = dict(flat)
    for name in EPOCH_PARAMETERS:
        if name in flat:
            if scale is None:
                del flat[name]
            else:
                spec = next((s for s in space.parameters if s.name == name), None)
                nearest = _nearest(spec, float(flat[name]) * scale) if spec is not None else None
                if nearest is None:
                    del flat[name]
                else:
                    flat[name] = nearest
    for name in REPEAT_PARAMETERS:
        flat.pop(name, None)
    params, _problems = express_in_space(space, flat)
    return params


def _nearest(spec: ParamSpec, value: float) -> Scalar | None:
    if spec.kind == "categorical":
        numbers = [c for c in spec.choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
        if not numbers:
            return None
        low, high = min(numbers), max(numbers)
        candidates: Sequence[Scalar] = numbers
    else:
        low, high = spec.low, spec.high
        candidates = [spec.snap(value)]
    if value < low * (1 - OUTSIDE_RANGE) or value > high * (1 + OUTSIDE_RANGE):
        return None
    return min(candidates, key=lambda c: abs(float(c) - value))


def _epoch_scale(prior: Mapping[str, int] | None, new: Mapping[str, int] | None,
                 space: SearchSpace) -> tuple[float | None, str]:
    if any(name in space.parameter_names for name in REPEAT_PARAMETERS):
        return None, "num_repeats is searched: epochs and repeats are left to the search"
    shown_before = (prior or {}).get("images_per_epoch")
    shown_now = (new or {}).get("images_per_epoch")
    if not shown_before or not shown_now:
        missing = "the prior's" if not shown_before else "this dataset's"
        return None, f"{missing} size is unknown: max_train_epochs is left to the search"
    scale = shown_before / shown_now
    return scale, (f"max_train_epochs x {scale:.2f} (images x repeats per epoch {shown_before} there, "
                   f"{shown_now} here), to the nearest value of the space")
