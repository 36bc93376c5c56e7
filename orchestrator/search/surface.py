"""The response-surface protocol: what the simulator and the search bench ask of a synthetic world.

A surface stands for "train this config, score its sample images, compute its validation loss" without a
GPU. :class:`~orchestrator.search.simulator.SimulatedExecutor`, the bench's best-reachable reference and
every strategy the bench compares use only the members below, so a surface written outside the project
(``bench/search_efficiency.py --surface MODULE:CLASS --surface-path DIR``) is measured exactly like ours.

``flat`` is a trial's flat kohya arguments (``learning_rate``, ``network_dim``, ``max_train_epochs``,
``lr_scheduler``, ``sample_every_n_epochs``, ...). Epochs are 1-based. A surface must be deterministic for
a given seed: the same ``(flat, epoch)`` always observes the same value.

    class MySurface:
        def __init__(self, seed: int) -> None: ...
        seconds_per_evaluation: float                     # GPU-seconds to sample + score one epoch
        def observe(self, flat, epoch) -> float: ...      # noisy score of a sample epoch
        def validation_loss(self, flat, epoch) -> float: ...  # noisy validation loss of an epoch
        def best_sampled_score(self, flat) -> float: ...  # noise-free best over the epochs it samples
        def epoch_cost(self, flat) -> float: ...          # GPU-seconds of one training epoch
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from orchestrator.common.errors import UserInputError

PROTOCOL_MEMBERS = ("observe", "validation_loss", "best_sampled_score", "epoch_cost", "seconds_per_evaluation")


@runtime_checkable
class ResponseSurface(Protocol):
    """A synthetic response of training + evaluation; constructed as ``CLASS(seed=int)``."""

    @property
    def seconds_per_evaluation(self) -> float:
        """GPU-seconds to sample and score one epoch (a plain attribute set in ``__init__`` will do)."""
        ...

    def observe(self, flat: Mapping[str, Any], epoch: int) -> float:
        """The noisy score of sample epoch ``epoch`` (what the evaluator would report)."""
        ...

    def validation_loss(self, flat: Mapping[str, Any], epoch: int) -> float:
        """The noisy validation loss at the end of ``epoch`` (lower is better)."""
        ...

    def best_sampled_score(self, flat: Mapping[str, Any]) -> float:
        """The noise-free score of the config's best sample epoch: what a full run of it reaches."""
        ...

    def epoch_cost(self, flat: Mapping[str, Any]) -> float:
        """GPU-seconds of one training epoch of this config (sampling excluded)."""
        ...


def missing_members(candidate: object, *, attributes: bool = True) -> list[str]:
    """The protocol members ``candidate`` lacks; methods must be callable. ``attributes=False`` checks the
    methods only (a class may set ``seconds_per_evaluation`` in ``__init__``)."""
    missing = []
    for name in PROTOCOL_MEMBERS:
        value = getattr(candidate, name, None)
        if name == "seconds_per_evaluation":
            if attributes and not isinstance(value, (int, float)):
                missing.append(name)
        elif not callable(value):
            missing.append(name)
    return missing


def load_surface(spec: str, path: str | Path | None = None) -> type:
    """The surface class named ``MODULE:CLASS``, its module importable from ``path`` when given.

    Raises :class:`UserInputError` naming what is wrong: a malformed spec, a module that is not found
    (or fails to import), a class that is missing, or protocol members the class lacks.
    """
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise UserInputError(f"surface {spec!r} is not MODULE:CLASS (e.g. my_surfaces:LateLearners)",
                             key="surface")
    if path is not None:
        folder = Path(path)
        if not folder.is_dir():
            raise UserInputError("surface path is not a folder", path=folder, key="surface-path")
        if str(folder.resolve()) not in sys.path:
            sys.path.insert(0, str(folder.resolve()))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        where = f" in {path} or on sys.path" if path is not None else " (give its folder with --surface-path)"
        raise UserInputError(f"surface module {module_name!r} not found{where}: {error}", key="surface") from None
    except Exception as error:  # the user's module itself is broken: say so, with its own message
        raise UserInputError(f"surface module {module_name!r} failed to import: {type(error).__name__}: "
                             f"{error}", key="surface") from None
    surface_class = getattr(module, class_name, None)
    if surface_class is None or not inspect.isclass(surface_class):
        found = sorted(name for name, value in vars(module).items() if inspect.isclass(value)
                       and value.__module__ == module.__name__)
        raise UserInputError(f"module {module_name!r} has no class {class_name!r} (classes in it: "
                             f"{', '.join(found) or 'none'})", key="surface")
    missing = missing_members(surface_class, attributes=False)
    if missing:
        raise UserInputError(f"surface {spec} lacks protocol members {', '.join(missing)} (a surface needs "
                             f"{', '.join(PROTOCOL_MEMBERS)}; see orchestrator/search/surface.py)", key="surface")
    return surface_class


def make_surface(surface_class: type, seed: int) -> ResponseSurface:
    """``surface_class(seed=seed)``, checked against the protocol once built (an attribute set in
    ``__init__`` is only there on the instance)."""
    try:
        surface = surface_class(seed=seed)
    except TypeError as error:
        raise UserInputError(f"surface {surface_class.__name__} cannot be built as "
                             f"{surface_class.__name__}(seed={seed}): {error}", key="surface") from None
    missing = missing_members(surface)
    if missing:
        raise UserInputError(f"surface {surface_class.__name__}(seed={seed}) lacks protocol members "
                             f"{', '.join(missing)}", key="surface")
    return surface
