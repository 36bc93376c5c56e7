"""The report of a side-by-side speed bench: each side's timed rounds, then the ratio of their speeds.

Both sides are timed in the same rounds of one run, so the ratio compares like with like; the fastest
rounds give the headline ratio (least disturbed by other load), the medians show how steady it was.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def print_rounds(label: str, times: Sequence[float], items: int, *, digits: int = 3) -> None:
    best = min(times)
    rounds = ", ".join(f"{t:.{digits}f}" for t in times)
    print(f"{label}: {best:6.{digits}f} s  {items / best:7.1f} frames/s  (rounds: {rounds})")


def print_speed_ratio(what: str, reference: Sequence[float], measured: Sequence[float], *,
                      target: float) -> float:
    """Print and return speed(measured) / speed(reference) on the fastest rounds, with PASS or FAIL."""
    ratio = min(reference) / min(measured)
    median_ratio = statistics.median(reference) / statistics.median(measured)
    print(f"{what} = {ratio:.2f} on the fastest rounds, {median_ratio:.2f} on the medians "
          f"(target >= {target:.2f}): {'PASS' if ratio >= target else 'FAIL'}")
    return ratio
