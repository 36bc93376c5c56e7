"""What one search process is told: its settings, and the summary it ends with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from orchestrator.common.errors import UserInputError
from orchestrator.search.choices import (
    DEFAULT_PRUNER,
    DEFAULT_STUDY_NAME,
    PrunerKind,
    SamplerKind,
    SchedulerKind,
)
from orchestrator.search.claims import CLAIM_SECONDS
from orchestrator.search.optuna_setup import (
    default_storage_url,
    make_storage,
    quiet_optuna_notices,
    redact_url,
)
from orchestrator.search.prior import PriorPlan
from orchestrator.search.space import SearchSpace
from orchestrator.search.warm_start import WarmStartPoint


@dataclass(frozen=True)
class SearchSettings:
    space: SearchSpace
    base_config: Mapping[str, Any]  # the base preset's tables, never mutated
    output: Path
    trials: int = 20
    study_name: str = DEFAULT_STUDY_NAME
    storage_url: str | None = None  # None = sqlite:///OUTPUT/optuna_study.db
    sampler: SamplerKind = "tpe"
    pruner: PrunerKind = DEFAULT_PRUNER
    seed: int | None = None
    enforce_constraints: bool = True
    # Stop a run whose score has not improved for this many sample epochs (0 = never): its best
    # checkpoint is already on disk and later epochs only over-fit. The trial completes normally.
    patience: int = 2
    write_files: bool = True  # False: no trial folders, no results file (benchmark only)
    heartbeat_interval: int = 60
    grace_period: int = 600
    claim_seconds: float = CLAIM_SECONDS  # after this, a trial asked but never claimed is abandoned (claims.py)
    references: Path | None = None
    # Known-good configs trained first (warm_start.py); enqueued once, when this study is created.
    warm_start: tuple[WarmStartPoint, ...] = ()
    # A finished study this one starts from (prior.py): its best configs enqueued, its region in the start-up.
    prior: PriorPlan | None = None
    dataset: Mapping[str, int] | None = None  # the training set's size (dataset_size.py), stored for a later prior
    gpus: str | None = None  # the GPUs this process trains on, recorded on each trial it runs
    # True for one of several workers on one machine (each on its own GPU): it re-adopts only the orphans
    # that trained on its GPUs, so that two workers never follow one trainer (or two trainers one GPU).
    own_gpu_orphans_only: bool = False
    # "pause" / "first-epoch": the search schedules epochs over resumable runs (scheduler.py) and the pruner
    # is not asked; "none": one run at a time to its end (or its pruner's stop). The CLI's default is "pause".
    scheduler: SchedulerKind = "none"
    gpu_hours: float | None = None  # the scheduler's GPU budget; None = the search ends by its trial count

    @property
    def storage(self) -> str:
        return self.storage_url or default_storage_url(self.output)


@dataclass
class SearchSummary:
    counted_trials: int
    counts: dict[str, int]
    best_number: int | None
    best_value: float | None
    results_path: Path | None
    gpu_seconds: float = 0.0
    adopted: list[int] = field(default_factory=list)


def load_worker_settings(storage_url: str, study_name: str, output: Path, **changes: Any) -> SearchSettings:
    """Settings for ``search worker``: the space, base config, references and total come from the study,
    so a worker on another machine needs only the storage URL (and the same dataset paths)."""
    from orchestrator.search.space import parse_search_space

    quiet_optuna_notices()
    try:
        summaries = optuna.study.get_all_study_summaries(make_storage(storage_url), include_best_trial=False)
    except UserInputError:
        raise
    except Exception as error:  # SQLAlchemy errors carry the URL; never print the password
        raise UserInputError(f"cannot open storage {redact_url(storage_url)}: {type(error).__name__}",
                             key="storage") from None
    summary = next((s for s in summaries if s.study_name == study_name), None)
    if summary is None or "search_space" not in summary.user_attrs:
        known = ", ".join(s.study_name for s in summaries) or "none"
        raise UserInputError(f"no search study named {study_name!r} in {redact_url(storage_url)} (studies: "
                             f"{known}); start it with `lora-pipeline search` first", key="study-name")
    attrs = summary.user_attrs
    references = attrs.get("references")
    values: dict[str, Any] = {
        "space": parse_search_space(attrs["search_space"]), "base_config": attrs["base_config"],
        "output": output, "trials": int(attrs["target_trials"]), "study_name": study_name,
        "storage_url": storage_url, "references": Path(references) if references else None,
        "sampler": attrs.get("sampler", "tpe"), "pruner": attrs.get("pruner", DEFAULT_PRUNER),
        "patience": int(attrs.get("patience", 2)),
        "seed": None,  # each worker draws its own start-up trials; a shared seed would repeat them
    }
    values.update(changes)
    return SearchSettings(**values)
