"""Checkpoint evaluation: five calibrated, weighted metrics per sample epoch, gates, the best epoch, a report.

Example (the search's objective: build the evaluator once, score each sample epoch as it lands)::

    from orchestrator.evaluate import Evaluator, load_evaluation_config

    config = load_evaluation_config()                     # configs/evaluation/default.toml
    with Evaluator("data/references", config=config, device="cuda") as evaluator:
        score = evaluator.score_epoch("outputs/trial_007", epoch=4)
        print(score.total, score.interval, score.metrics, score.failed_gates)
        result = evaluator.evaluate("outputs/trial_007")   # all epochs; writes evaluation/*.json
"""

from orchestrator.evaluate._calibration import MetricCalibration, RunCalibration
from orchestrator.evaluate._choice import EpochCandidate, EpochChoice, choose_epoch
from orchestrator.evaluate._config import METRICS, EvaluationConfig, load_evaluation_config, with_overrides
from orchestrator.evaluate._evaluator import EvaluationResult, Evaluator, evaluate_run, score_epoch
from orchestrator.evaluate._gates import GATES, GateVerdict
from orchestrator.evaluate._metrics import EpochScore, ImageScore, rule_descriptions
from orchestrator.evaluate._report import write_report
from orchestrator.evaluate._rules import LinearRule
from orchestrator.evaluate._selection import BestChoice, choose_best

__all__ = [
    "GATES",
    "METRICS",
    "BestChoice",
    "EpochCandidate",
    "EpochChoice",
    "EpochScore",
    "GateVerdict",
    "MetricCalibration",
    "RunCalibration",
    "EvaluationConfig",
    "EvaluationResult",
    "Evaluator",
    "ImageScore",
    "LinearRule",
    "choose_best",
    "choose_epoch",
    "evaluate_run",
    "load_evaluation_config",
    "rule_descriptions",
    "score_epoch",
    "with_overrides",
    "write_report",
]
