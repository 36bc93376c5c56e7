"""``trial_results.json``: every trial of the study with what happened to it and why.

The Optuna storage is the source of truth; this file is a readable projection of it, rewritten
atomically after every state change (started, epoch scored, rejected, pruned, failed, complete),
so it always parses and a person or ``monitor_hyperparam_optuna.sh`` can read it at any moment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from orchestrator.common.atomic import atomic_write_json
from orchestrator.search.claims import is_unclaimed
from orchestrator.search.pruning import VALIDATION_LOSS_ATTR

RESULTS_FILE = "trial_results.json"

# Outcomes of a trial as the search records them (user attribute "outcome"); Optuna's state alone cannot
# tell a rejected trial (no GPU time) from one the pruner stopped mid-run.
REJECTED, SURPLUS, PRUNED, FAILED, COMPLETE = "rejected", "surplus", "pruned", "failed", "complete"
ABANDONED = "abandoned"  # asked by a worker that died before claiming it (claims.py): nothing was trained
NOT_COUNTED = {REJECTED, SURPLUS, ABANDONED}
PAUSED = "paused"  # what one stretch of a scheduled run ended in: it stays RUNNING and may continue
# A scheduled run's phase (user attribute "phase", scheduled.py): training its first stretch, paused at a sample
# epoch with its state saved, resumed from that state, finished (its last epoch), or stopped (still paused
# when the search ended: final at its best score so far).
PHASE_ATTR = "phase"
PHASE_TRAINING, PHASE_PAUSED, PHASE_RESUMED = "training", "paused", "resumed"
PHASE_FINISHED, PHASE_STOPPED = "finished", "stopped"
PRIOR_ATTR = "prior"  # a trial a prior study proposed (prior.py): {"kind": "config" | "draw", ...}

# User attributes that describe one attempt at a trial. Optuna's retry of a failed trial copies every
# user attribute, so a retry clears these when it starts (set to None: Optuna cannot delete one).
ATTEMPT_ATTRS: tuple[str, ...] = (
    "outcome", "failure_cause", "prune_reason", "early_stop_reason", "rejection_reason", "failed_rules",
    "best_epoch", "best_score", "checkpoint", "gpu_seconds", "epoch_scores", "adopted", "stopped_early",
    "stop_requested", "directory", VALIDATION_LOSS_ATTR, PHASE_ATTR, "paused_at", "pause_reason", "segments",
    "promoted", "predicted_final",
)


def superseded_numbers(trials: Iterable[FrozenTrial]) -> set[int]:
    """Numbers of failed trials that were re-queued (their retry stands for them)."""
    numbers: set[int] = set()
    for trial in trials:
        numbers.update(int(n) for n in trial.system_attrs.get("retry_history", []))
    return numbers


def outcome_of(trial: FrozenTrial) -> str:
    recorded = trial.user_attrs.get("outcome")
    if recorded and trial.state.is_finished():
        return str(recorded)
    if trial.state == TrialState.RUNNING and trial.user_attrs.get(PHASE_ATTR) == PHASE_PAUSED:
        return PAUSED
    return {
        TrialState.COMPLETE: COMPLETE,
        TrialState.PRUNED: PRUNED,
        TrialState.FAIL: FAILED,
        TrialState.RUNNING: "running",
        TrialState.WAITING: "waiting",
    }[trial.state]


def counted_trials(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The trials that use up the requested total: trained or training, once each. Rejected and
    surplus trials cost no GPU time, nor do abandoned ones; a failed trial that was retried is counted
    through its retry; a trial asked but not (yet) claimed by a worker (claims.py) may never train."""
    superseded = superseded_numbers(trials)
    return [
        trial for trial in trials
        if trial.state != TrialState.WAITING
        and not is_unclaimed(trial)
        and outcome_of(trial) not in NOT_COUNTED
        and trial.number not in superseded
    ]


def validation_losses_of(trial: FrozenTrial) -> dict[str, float]:
    """The validation losses the trainer reported with the trial's scores, by epoch (as text, like
    ``epoch_scores``); empty when the trial's run had no validation split."""
    stored = trial.user_attrs.get(VALIDATION_LOSS_ATTR) or {}
    rows = sorted((int(epoch), float(loss)) for epoch, loss in stored.items()) if isinstance(stored, dict) else []
    return {str(epoch): loss for epoch, loss in rows}


STALE_HEARTBEAT_CAUSE = ("its worker stopped beating for longer than the grace period (it died, or lost the "
                         "database) and the heartbeat check failed it")


def _unrecorded_failure(trial: FrozenTrial, superseded: set[int]) -> str | None:
    """Every failure the search tells carries its cause; a FAIL without a recorded outcome was told by
    Optuna's heartbeat check (``fail_stale_trials``), in another worker or after a restart."""
    if trial.state != TrialState.FAIL or trial.user_attrs.get("outcome"):
        return None
    return STALE_HEARTBEAT_CAUSE + ("; re-queued with the same parameters" if trial.number in superseded else "")


def trial_entry(trial: FrozenTrial, superseded: set[int]) -> dict[str, Any]:
    attrs = trial.user_attrs
    validation = validation_losses_of(trial)
    last_validation = max(validation, key=int, default=None)
    return {
        "number": trial.number,
        "state": trial.state.name.lower(),
        "outcome": outcome_of(trial),
        "retried_as_new_trial": trial.number in superseded,
        "retry_of": trial.system_attrs.get("failed_trial"),
        "value": trial.value,
        "best_score": attrs.get("best_score"),
        "best_epoch": attrs.get("best_epoch"),
        "checkpoint": attrs.get("checkpoint"),
        "epoch_scores": {str(step): value for step, value in sorted(trial.intermediate_values.items())},
        "validation_losses": validation,
        # The newest one: what a trial that was stopped or finished last measured on the held-out images.
        "last_validation_loss": None if last_validation is None else {"epoch": int(last_validation),
                                                                      "loss": validation[last_validation]},
        "gpu_seconds": attrs.get("gpu_seconds"),
        # A scheduled run (scheduled.py): training / paused / resumed / finished / stopped, and its stretches.
        "phase": attrs.get(PHASE_ATTR),
        "paused_at": attrs.get("paused_at"),
        "segments": attrs.get("segments") or [],
        "reason": attrs.get("pause_reason") if attrs.get(PHASE_ATTR) == PHASE_PAUSED else (
            attrs.get("rejection_reason") or attrs.get("failure_cause") or attrs.get("prune_reason")
            or attrs.get("early_stop_reason") or _unrecorded_failure(trial, superseded)),
        "failed_rules": attrs.get("failed_rules") or [],
        "adopted": bool(attrs.get("adopted", False)),
        "prior": attrs.get(PRIOR_ATTR),
        "params": dict(trial.params),
        "overrides": attrs.get("overrides", {}),
        "directory": attrs.get("directory"),
        "worker": attrs.get("worker"),
        "started_at": trial.datetime_start.isoformat() if trial.datetime_start else None,
        "finished_at": trial.datetime_complete.isoformat() if trial.datetime_complete else None,
    }


def build_results(trials: Sequence[FrozenTrial], *, study_name: str, storage: str,
                  target_trials: int) -> dict[str, Any]:
    superseded = superseded_numbers(trials)
    entries = [trial_entry(trial, superseded) for trial in sorted(trials, key=lambda t: t.number)]
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry["outcome"]] = counts.get(entry["outcome"], 0) + 1
    scored = [e for e in entries if e["outcome"] == COMPLETE and e["value"] is not None]
    best = max(scored, key=lambda e: e["value"], default=None)
    # The best checkpoint on disk now, from any run that has one: finished, paused or still training.
    checkpoints = [e for e in entries if e["checkpoint"] and e["best_score"] is not None
                   and e["outcome"] not in (FAILED, REJECTED)]
    best_now = max(checkpoints, key=lambda e: e["best_score"], default=None)
    return {
        "study_name": study_name,
        "storage": storage,
        "target_trials": target_trials,
        "counted_trials": len(counted_trials(trials)),
        "updated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "counts": counts,
        "gpu_hours": round(sum(e["gpu_seconds"] or 0.0 for e in entries) / 3600.0, 4),
        "best": None if best is None else {
            key: best[key] for key in ("number", "value", "best_epoch", "checkpoint", "params", "overrides")
        },
        "best_checkpoint": None if best_now is None else {
            "number": best_now["number"], "score": best_now["best_score"], "epoch": best_now["best_epoch"],
            "checkpoint": best_now["checkpoint"], "phase": best_now["phase"] or best_now["outcome"]},
        "trials": entries,
    }


def write_results(output: Path, trials: Sequence[FrozenTrial], *, study_name: str, storage: str,
                  target_trials: int) -> Path:
    data = build_results(trials, study_name=study_name, storage=storage, target_trials=target_trials)
    return atomic_write_json(output / RESULTS_FILE, data)
