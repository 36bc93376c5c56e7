"""Values read out of one piece of sd-scripts' console output: numbers, a training bar's loss and speed,
a validation bar's epoch average, and a rich log record wrapped across lines.

Pure functions on text; :mod:`orchestrator.kohya.log_grammar` decides which piece is what and keeps the
stream's state.
"""

from __future__ import annotations

import re

_VAL_LOSS = re.compile(r"val_epoch_avg_loss=([^,\]\s]+)")
_COUNTER = re.compile(r"\|\s*(\d+)/(\d+) \[([^\]]*)\]")


def parse_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def avr_loss_text(inside: str) -> str | None:
    """``avr_loss``'s value in a bar's bracket (``00:06<00:06,  2.32s/it, avr_loss=1.15]``)."""
    at = inside.rfind("avr_loss=")
    if at < 0:
        return None
    return inside[at + 9:].split(",", 1)[0].rstrip("] ")


def join_wrapped(parts: list[str]) -> str:
    """Re-join a rich record wrapped across lines.

    Rich breaks at spaces when it can and folds a long word at the column width otherwise; a fragment
    as wide as the widest one of the record was therefore folded (join without a space).
    """
    if len(parts) == 1:
        return parts[0]
    width = max(len(part) for part in parts)
    joined = parts[0]
    for previous, part in zip(parts, parts[1:], strict=False):
        joined += ("" if len(previous) == width and " " not in previous[-1:] else " ") + part
    return joined


def seconds_per_iteration(inside: str) -> float | None:
    """Seconds per step from a bar's bracket: tqdm shows ``2.32s/it`` when slow, ``4.10it/s`` when fast."""
    for part in inside.split(", ")[1:]:
        part = part.strip()
        if part.endswith(("s/it", "it/s")) and (value := parse_number(part[:-4])):
            return value if part.endswith("s/it") else 1.0 / value
    return None


def validation_progress(text: str) -> tuple[int, int, float | None] | None:
    """A validation bar's ``done/total`` and the ``val_epoch_avg_loss`` it shows (None before the first)."""
    counter = _COUNTER.search(text)
    if counter is None:
        return None
    loss_match = _VAL_LOSS.search(counter[3])
    return int(counter[1]), int(counter[2]), parse_number(loss_match[1]) if loss_match else None
