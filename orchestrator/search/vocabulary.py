"""What a study stores, named once: the user attributes of the study and of each trial, the outcomes a
trial ends with, and the system attributes of Optuna's own that the search reads back.

A string literal for a stored key is a typo waiting to happen and a rename that misses a reader: every
module that writes or reads one of these names imports it from here (``study_identity.py`` and
``study.py`` write them, ``results.py``, ``prior.py``, the samplers and the pruner read them back).
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------- study user attributes
SEARCH_SPACE_ATTR = "search_space"  # the space in its file format (a worker elsewhere loads it from here)
BASE_CONFIG_ATTR = "base_config"  # the base preset's tables
REFERENCES_ATTR = "references"  # the reference images' folder
TARGET_TRIALS_ATTR = "target_trials"  # the requested number of counted trials
SAMPLER_ATTR = "sampler"
PRUNER_ATTR = "pruner"
PATIENCE_ATTR = "patience"
SCHEDULER_ATTR = "scheduler"  # pause / first-epoch / none: workers schedule as the study was started
GPU_HOURS_ATTR = "gpu_hours"  # the scheduler's GPU budget (None: the trial count is the budget)
OBJECTIVE_ATTR = "objective"  # what a score means (metric weights, scoring, the simulator's surface seed)
WARM_START_ATTR = "warm_start"  # names of the enqueued warm-start points
DATASET_ATTR = "dataset_size"  # {"images": int, "images_per_epoch": int}
# PRIOR_ATTR (below) is a study attribute too: the prior the study was created with.

# ---------------------------------------------------------------------------------- trial user attributes
OUTCOME_ATTR = "outcome"  # one of the outcomes below, set when the search tells the trial
WORKER_ATTR = "worker"  # the claim: host:pid:start of the worker that runs the trial (claims.py)
GPUS_ATTR = "gpus"  # the GPUs the trial trains on
DIRECTORY_ATTR = "directory"  # the trial's folder
OVERRIDES_ATTR = "overrides"  # the flat kohya values the trial sets (params plus derived values)
PRIOR_ATTR = "prior"  # a trial a prior study proposed: {"kind": "config" | "draw", ...}
FAILURE_CAUSE_ATTR = "failure_cause"
PRUNE_REASON_ATTR = "prune_reason"
EARLY_STOP_REASON_ATTR = "early_stop_reason"
REJECTION_REASON_ATTR = "rejection_reason"
FAILED_RULES_ATTR = "failed_rules"
BEST_EPOCH_ATTR = "best_epoch"
BEST_SCORE_ATTR = "best_score"
CHECKPOINT_ATTR = "checkpoint"
GPU_SECONDS_ATTR = "gpu_seconds"
EPOCH_SCORES_ATTR = "epoch_scores"
ADOPTED_ATTR = "adopted"  # the trial's trainer outlived its orchestrator and was adopted by a resume
STOPPED_EARLY_ATTR = "stopped_early"
STOP_REQUESTED_ATTR = "stop_requested"  # why the search asked the trainer to stop (e.g. PAST_PEAK)
LAST_EPOCH_ATTR = "last_epoch"  # the last epoch the trial's run will reach (the pruner's horizon)
VALIDATION_LOSS_ATTR = "validation_loss"  # {epoch: loss} on the held-out images
PAST_PEAK = "past_peak"  # the STOP_REQUESTED_ATTR of a trial stopped by the early-stopping rule
# A scheduled run (scheduler.py, scheduled.py): its phase, where it paused and why, its trained stretches
# ([[first epoch, last epoch, gpu seconds, trainer start], ...]; the start -- the run record's -- names a
# segment, so that recording it twice after a crash replaces it), whether first-epoch promoted it, the model's
# prediction of its final best (what TPE sees of it while it is paused), and how many of its segments failed
# with a saved state to continue from (the first such failure pauses it again: SEGMENT_RETRIES).
PHASE_ATTR = "phase"
PHASE_TRAINING, PHASE_PAUSED, PHASE_RESUMED = "training", "paused", "resumed"
PHASE_FINISHED, PHASE_STOPPED = "finished", "stopped"  # stopped: still paused when the search ended (final)
PHASE_EVICTED = "evicted"  # its paused state was deleted to keep within --state-budget: final at its best so far
PAUSED_AT_ATTR = "paused_at"
PAUSE_REASON_ATTR = "pause_reason"
SEGMENTS_ATTR = "segments"
PROMOTED_ATTR = "promoted"
PREDICTED_ATTR = "predicted_final"
SEGMENT_FAILURES_ATTR = "segment_failures"
CRASH_PAUSED_ATTR = "paused_by_crash"  # paused by a failed segment, not by the scheduler: it continues first

# User attributes that describe one attempt at a trial. Optuna's retry of a failed trial copies every
# user attribute, so a retry clears these when it starts (set to None: Optuna cannot delete one).
ATTEMPT_ATTRS: tuple[str, ...] = (
    OUTCOME_ATTR, FAILURE_CAUSE_ATTR, PRUNE_REASON_ATTR, EARLY_STOP_REASON_ATTR, REJECTION_REASON_ATTR,
    FAILED_RULES_ATTR, BEST_EPOCH_ATTR, BEST_SCORE_ATTR, CHECKPOINT_ATTR, GPU_SECONDS_ATTR, EPOCH_SCORES_ATTR,
    ADOPTED_ATTR, STOPPED_EARLY_ATTR, STOP_REQUESTED_ATTR, DIRECTORY_ATTR, VALIDATION_LOSS_ATTR,
    PHASE_ATTR, PAUSED_AT_ATTR, PAUSE_REASON_ATTR, SEGMENTS_ATTR, PROMOTED_ATTR, PREDICTED_ATTR,
    SEGMENT_FAILURES_ATTR, CRASH_PAUSED_ATTR,
)

# ---------------------------------------------------------------------------------- outcomes
# Optuna's state alone cannot tell a rejected trial (no GPU time) from one the pruner stopped mid-run.
REJECTED, SURPLUS, PRUNED, FAILED, COMPLETE = "rejected", "surplus", "pruned", "failed", "complete"
ABANDONED = "abandoned"  # asked by a worker that died before claiming it (claims.py): nothing was trained
RUNNING, WAITING = "running", "waiting"  # not finished yet (no OUTCOME_ATTR)
PAUSED = "paused"  # a scheduled run paused at a sample epoch: RUNNING in Optuna, it may continue
NOT_COUNTED = frozenset({REJECTED, SURPLUS, ABANDONED})

# ---------------------------------------------------------------------------------- Optuna's system attributes
RETRY_HISTORY_SYSTEM_ATTR = "retry_history"  # numbers of the failed trials a retry stands for
FAILED_TRIAL_SYSTEM_ATTR = "failed_trial"  # the number of the failed trial a retry re-runs
FIXED_PARAMS_SYSTEM_ATTR = "fixed_params"  # the parameters of an enqueued trial
