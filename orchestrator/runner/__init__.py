"""Training runs: sd-scripts launched in tmux, its log read live into ``RUN_DIR/run.json``.

Public API (used by the search stage)::

    handle = start_training(rendered, paths=paths)           # pre-flight + launch, returns at once
    record = handle.follow(on_event=callback)                # tails the log until the run has ended
    stop_run(run_dir, timeout=60)                            # SIGINT, then kill after the timeout
    handle = adopt_run(run_dir)                              # re-attach after the orchestrator died
    record = load_run_record(run_dir)

Success is ``record.status == "succeeded"``: sd-scripts logged ``model saved.`` and the final
checkpoint is on disk (never the exit code alone).
"""

from orchestrator.runner.handle import RunHandle, adopt_run, stop_run
from orchestrator.runner.launch import (
    PreflightFailed,
    follow_with_retry,
    relaunch_run,
    run_preflight,
    start_training,
)
from orchestrator.runner.outcome import decide_outcome, failure_advice
from orchestrator.runner.record import RunRecord, load_run_record

__all__ = [
    "PreflightFailed",
    "RunHandle",
    "RunRecord",
    "adopt_run",
    "decide_outcome",
    "failure_advice",
    "follow_with_retry",
    "load_run_record",
    "relaunch_run",
    "run_preflight",
    "start_training",
    "stop_run",
]
