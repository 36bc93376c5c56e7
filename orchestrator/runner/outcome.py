"""How a run ended, from what its log, its files and its exit say: pure rules, and advice for people."""

from __future__ import annotations

import re
import signal
from typing import Any

from orchestrator.kohya.log_grammar import Failure


def decide_outcome(*, finished_logged: bool, final_on_disk: bool, log_failure: dict[str, Any] | None,
                   exit_code: int | None, signal_number: int | None, stop_reason: str | None,
                   vanished: str | None, supervisor_error: str | None = None,
                   stall_seconds: float | None = None) -> tuple[str, dict[str, Any] | None]:
    """``(status, failure)`` of an ended run. Pure: the rules in one place.

    A failure the log shows wins over a stop request: a trainer that ran out of memory (or crashed)
    while it was being stopped has failed. Only the interruption the stop itself causes (a
    ``KeyboardInterrupt`` traceback, or one cut off by the escalation to SIGKILL) is part of the stop.
    """
    if finished_logged and final_on_disk:
        return "succeeded", None
    interrupted = log_failure is not None and _is_interruption(log_failure) and stop_reason is not None
    if log_failure is not None and not interrupted:
        return "failed", log_failure
    if stop_reason and stop_reason not in ("nan_loss", "stalled"):
        return "stopped", None  # a person, or the search pruning a trial: not a failure of the run
    if log_failure is not None and stop_reason != "stalled":
        return "failed", log_failure
    if stop_reason == "stalled":
        return "failed", {"cause": "stalled", "lines": [],
                          "message": f"stalled: no output for {stall_seconds or 0:g} s; stopped"}
    if supervisor_error:
        return "failed", {"cause": "unknown", "message": supervisor_error, "lines": []}
    if signal_number:
        try:
            name = signal.Signals(signal_number).name
        except ValueError:
            name = ""
        return "failed", {"cause": "killed_by_signal", "lines": [],
                          "message": f"trainer killed by signal {signal_number} {name}".strip()}
    if vanished:
        cause = "killed_by_signal" if "killed" in vanished else "unknown"
        return "failed", {"cause": cause, "message": vanished, "lines": []}
    if finished_logged:
        return "failed", {"cause": "unknown", "lines": [],
                          "message": "`model saved.` was logged but the final checkpoint is not on disk"}
    return "failed", {"cause": "unknown", "lines": [],
                      "message": f"the trainer exited with code {exit_code} without `model saved.`"}


_EXCEPTION_NAME = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Invalid)\b")


def _is_interruption(failure: dict[str, Any]) -> bool:
    """A traceback that ends in KeyboardInterrupt/SystemExit, or that was cut off before its exception line."""
    return failure.get("cause") == "traceback" and not _EXCEPTION_NAME.match(str(failure.get("message", "")))


def failure_advice(failure: dict[str, Any] | Failure | None) -> str | None:
    """One line telling a person what to try for a failure cause."""
    cause = failure.cause if isinstance(failure, Failure) else (failure or {}).get("cause")
    return {
        "cuda_oom": "out of GPU memory: lower the batch size (--retry-oom halves it and doubles gradient "
                    "accumulation), enable gradient_checkpointing, or cache latents",
        "nan_loss": "the loss became NaN/inf: lower the learning rate, use bf16 instead of fp16, or check "
                    "the images",
        "import_error": "a Python package is missing in the trainer's environment (see the message)",
        "no_data": "sd-scripts found no images: check image_dir in the dataset config and the kohya folder "
                   "layout ({repeats}_{name}/)",
        "killed_by_signal": "the trainer was killed from outside (the system's OOM killer, or a person)",
    }.get(cause or "")
