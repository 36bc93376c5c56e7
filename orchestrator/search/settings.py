"""What one search process is told: its settings, and the summary it ends with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.common.errors import UserInputError
from orchestrator.search.choices import (
    DEFAULT_PRUNER,
    DEFAULT_STUDY_NAME,
    PrunerKind,
    SamplerKind,
    SchedulerKind,
)
from orchestrator.search.claims import CLAIM_SECONDS
from orchestrator.search.prior import PriorPlan
from orchestrator.search.space import SearchSpace
from orchestrator.search.storage import default_storage_url, describe_storage, load_study
from orchestrator.search.vocabulary import (
    BASE_CONFIG_ATTR,
    GPU_HOURS_ATTR,
    PATIENCE_ATTR,
    PRUNER_ATTR,
    REFERENCES_ATTR,
    SAMPLER_ATTR,
    SCHEDULER_ATTR,
    SEARCH_SPACE_ATTR,
    TARGET_TRIALS_ATTR,
)
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
    # is not asked; "none": one run at a time to its end (or its pruner's stop). The CLI's default is
    # choices.DEFAULT_SCHEDULER. Workers of one study (--parallel-gpus, PostgreSQL) schedule as it was started.
    scheduler: SchedulerKind = "none"
    gpu_hours: float | None = None  # the scheduler's GPU budget; None = the search ends by its trial count
    # Disk the paused runs' training states may take (runner/state_budget.py); over it, the least promising
    # paused run loses its state and becomes final. None = no limit (the CLI's default is 20 GB).
    state_budget_bytes: int | None = None

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

    attrs = load_study(storage_url, study_name, study_key="study-name").user_attrs
    if "search_space" not in attrs:
        raise UserInputError(f"study {study_name!r} in {describe_storage(storage_url)} is no search study; start "
                             "one with `lora-pipeline search` first", key="study-name")
    references = attrs.get(REFERENCES_ATTR)
    values: dict[str, Any] = {
        "space": parse_search_space(attrs[SEARCH_SPACE_ATTR]), "base_config": attrs[BASE_CONFIG_ATTR],
        "output": output, "trials": int(attrs[TARGET_TRIALS_ATTR]), "study_name": study_name,
        "storage_url": storage_url, "references": Path(references) if references else None,
        "sampler": attrs.get(SAMPLER_ATTR, "tpe"), "pruner": attrs.get(PRUNER_ATTR, DEFAULT_PRUNER),
        "patience": int(attrs.get(PATIENCE_ATTR, 2)),
        "scheduler": attrs.get(SCHEDULER_ATTR, "none"), "gpu_hours": attrs.get(GPU_HOURS_ATTR),
        "seed": None,  # each worker draws its own start-up trials; a shared seed would repeat them
    }
    values.update(changes)
    return SearchSettings(**values)
