"""What one evaluation of a run gives back; shared by the evaluator and the files it writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.evaluate._calibration import RunCalibration
from orchestrator.evaluate._config import EvaluationConfig
from orchestrator.evaluate._metrics import EpochScore
from orchestrator.evaluate._run_facts import RunFacts
from orchestrator.evaluate._selection import BestChoice


@dataclass
class EvaluationResult:
    run_dir: Path
    epochs: dict[int, EpochScore]
    best: BestChoice | None
    problems: list[str]
    config: EvaluationConfig
    encoder_identity: str
    facts: RunFacts | None = None
    scores_path: Path | None = None
    best_path: Path | None = None
    seconds: float = 0.0
    fatal: list[str] = field(default_factory=list)  # problems that leave the objective undefined
    calibration: RunCalibration | None = None
