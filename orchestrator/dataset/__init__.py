"""Dataset curation (quality, near-duplicates, CLIP identity, review) and the kohya folder layout.

Entry points: ``orchestrator.dataset.curate.curate``, ``orchestrator.dataset.apply.apply_decisions``,
and, re-exported here because other stages call them, :func:`prepare_kohya_dataset` and
:func:`validate_kohya_dataset` (the training runner's pre-flight and the quickstart). Curation's
heavy libraries load only when it runs, so importing this package is cheap.
"""

from orchestrator.dataset.layout import (
    DatasetProblem,
    DatasetReport,
    PreparedDataset,
    SubsetReport,
    prepare_kohya_dataset,
    validate_kohya_dataset,
)

__all__ = [
    "DatasetProblem",
    "DatasetReport",
    "PreparedDataset",
    "SubsetReport",
    "prepare_kohya_dataset",
    "validate_kohya_dataset",
]
