"""``trial_results.json``: every trial of the study with what happened to it and why.

The Optuna storage is the source of truth; this file is a readable projection of it, rewritten
atomically after every state change (started, epoch scored, rejected, pruned, failed, complete),
so it always parses and a person or ``monitor_hyperparam_optuna.sh`` can read it at any moment.
:func:`load_results` is its one reader (``search analyze``, ``search status``), beside the writer.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from orchestrator.common.atomic import atomic_write_json
from orchestrator.common.errors import UserInputError
from orchestrator.search.claims import is_unclaimed
from orchestrator.search.vocabulary import (
    ADOPTED_ATTR,
    BEST_EPOCH_ATTR,
    BEST_SCORE_ATTR,
    CHECKPOINT_ATTR,
    COMPLETE,
    DIRECTORY_ATTR,
    EARLY_STOP_REASON_ATTR,
    FAILED,
    FAILED_RULES_ATTR,
    FAILED_TRIAL_SYSTEM_ATTR,
    FAILURE_CAUSE_ATTR,
    GPU_SECONDS_ATTR,
    NOT_COUNTED,
    OUTCOME_ATTR,
    OVERRIDES_ATTR,
    PAUSE_REASON_ATTR,
    PAUSED,
    PAUSED_AT_ATTR,
    PHASE_ATTR,
    PHASE_EVICTED,
    PHASE_PAUSED,
    PRIOR_ATTR,
    PRUNE_REASON_ATTR,
    PRUNED,
    REJECTED,
    REJECTION_REASON_ATTR,
    RETRY_HISTORY_SYSTEM_ATTR,
    RUNNING,
    SEGMENTS_ATTR,
    VALIDATION_LOSS_ATTR,
    WAITING,
    WORKER_ATTR,
)

RESULTS_FILE = "trial_results.json"


def superseded_numbers(trials: Iterable[FrozenTrial]) -> set[int]:
    """Numbers of failed trials that were re-queued (their retry stands for them)."""
    numbers: set[int] = set()
    for trial in trials:
        numbers.update(int(n) for n in trial.system_attrs.get(RETRY_HISTORY_SYSTEM_ATTR, []))
    return numbers


def outcome_of(trial: FrozenTrial) -> str:
    recorded = trial.user_attrs.get(OUTCOME_ATTR)
    if recorded and trial.state.is_finished():
        return str(recorded)
    if trial.state == TrialState.RUNNING and trial.user_attrs.get(PHASE_ATTR) == PHASE_PAUSED:
        return PAUSED
    return {
        TrialState.COMPLETE: COMPLETE,
        TrialState.PRUNED: PRUNED,
        TrialState.FAIL: FAILED,
        TrialState.RUNNING: RUNNING,
        TrialState.WAITING: WAITING,
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
    if trial.state != TrialState.FAIL or trial.user_attrs.get(OUTCOME_ATTR):
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
        "retry_of": trial.system_attrs.get(FAILED_TRIAL_SYSTEM_ATTR),
        "value": trial.value,
        "best_score": attrs.get(BEST_SCORE_ATTR),
        "best_epoch": attrs.get(BEST_EPOCH_ATTR),
        "checkpoint": attrs.get(CHECKPOINT_ATTR),
        "epoch_scores": {str(step): value for step, value in sorted(trial.intermediate_values.items())},
        "validation_losses": validation,
        # The newest one: what a trial that was stopped or finished last measured on the held-out images.
        "last_validation_loss": None if last_validation is None else {"epoch": int(last_validation),
                                                                      "loss": validation[last_validation]},
        "gpu_seconds": attrs.get(GPU_SECONDS_ATTR),
        # A scheduled run (scheduled.py): training / paused / resumed / finished / stopped, and its stretches.
        "phase": attrs.get(PHASE_ATTR),
        "paused_at": attrs.get(PAUSED_AT_ATTR),
        "segments": attrs.get(SEGMENTS_ATTR) or [],
        "reason": attrs.get(PAUSE_REASON_ATTR) if attrs.get(PHASE_ATTR) in (PHASE_PAUSED, PHASE_EVICTED) else (
            attrs.get(REJECTION_REASON_ATTR) or attrs.get(FAILURE_CAUSE_ATTR) or attrs.get(PRUNE_REASON_ATTR)
            or attrs.get(EARLY_STOP_REASON_ATTR) or _unrecorded_failure(trial, superseded)),
        "failed_rules": attrs.get(FAILED_RULES_ATTR) or [],
        "adopted": bool(attrs.get(ADOPTED_ATTR, False)),
        "prior": attrs.get(PRIOR_ATTR),
        "params": dict(trial.params),
        "overrides": attrs.get(OVERRIDES_ATTR, {}),
        "directory": attrs.get(DIRECTORY_ATTR),
        "worker": attrs.get(WORKER_ATTR),
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


# ------------------------------------------------------------------------------------------------ reading
# The keys of trial_results.json (written above) that its readers use, with their JSON types.
_RESULTS_KEYS: dict[str, tuple[type, ...]] = {"study_name": (str,), "target_trials": (int,), "counted_trials": (int,),
                                              "updated_at": (str,), "counts": (dict,), "gpu_hours": (int, float),
                                              "best": (dict, type(None)), "trials": (list,)}
_TRIAL_KEYS: dict[str, tuple[type, ...]] = {"number": (int,), "outcome": (str,)}
_TRIAL_KEYS_IF_THERE: dict[str, tuple[type, ...]] = {"params": (dict,), "epoch_scores": (dict,),
                                                     "directory": (str, type(None))}


def load_results(output: Path) -> dict[str, Any]:
    """``OUTPUT/trial_results.json``, checked to be one: the file is written atomically, so a file that does
    not parse or lacks its keys was damaged or is another program's, and is named as such (never rewritten
    by a reader)."""
    if not output.is_dir():
        what = "is not a folder" if output.exists() else "does not exist"
        raise UserInputError(f"search folder {what} (give the --out folder of `lora-pipeline search`)",
                             path=output)
    path = output / RESULTS_FILE
    if not path.is_file():
        raise UserInputError(f"no {RESULTS_FILE} here; run `lora-pipeline search --out {output}` first",
                             path=path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise UserInputError(f"not valid JSON: {error}", path=path) from None
    _require_keys(data, _RESULTS_KEYS, path, "")
    for index, entry in enumerate(data["trials"]):
        _require_keys(entry, _TRIAL_KEYS, path, f"trials[{index}].")
        _require_keys(entry, {k: v for k, v in _TRIAL_KEYS_IF_THERE.items() if k in entry}, path,
                      f"trials[{index}].")
    return data


def _require_keys(data: Any, keys: dict[str, tuple[type, ...]], path: Path, prefix: str) -> None:
    if not isinstance(data, dict):
        raise UserInputError(f"not a search results file: {prefix or 'the file'} is a JSON {type(data).__name__}, "
                             "not an object", path=path, key=prefix.rstrip(".") or None)
    for key, types in keys.items():
        value = data.get(key)
        if key not in data or not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise UserInputError(f"not a search results file: {'missing' if key not in data else 'wrong type'}",
                                 path=path, key=f"{prefix}{key}")
