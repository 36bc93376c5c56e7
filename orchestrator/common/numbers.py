"""The one rule for a number a person types: finite and inside the range the stage can use.

``float("nan")`` and ``float("inf")`` parse, and so do ``-1`` frames or a similarity threshold of ``2.0``;
left through, they surface far away (a NaN that ``json.dumps`` refuses after the work is done, an empty
bootstrap, a threshold no frame can pass). ``number_arg`` is the argparse ``type`` for such an option, so
the command line refuses it by name before anything is read or written; ``number_problem`` is the same
check for numbers read from a file.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number_problem(value: object, *, integer: bool = False, low: float | None = None,
                   high: float | None = None, above_low: bool = False) -> str | None:
    """Why ``value`` is not a usable number in ``[low, high]`` (``(low, high]`` with ``above_low``; an int
    when ``integer``), or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        return f"expected {'a whole number' if integer else 'a number'}, got {value!r}"
    if not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    if above_low and low is not None and value <= low:
        return f"must be above {low:g}, got {value!r}"
    if low is not None and high is not None and not low <= value <= high:
        return f"must be between {low:g} and {high:g}, got {value!r}"
    if low is not None and value < low:
        return f"must be at least {low:g}, got {value!r}"
    if high is not None and value > high:
        return f"must be at most {high:g}, got {value!r}"
    return None


def number_arg(kind: type[int] | type[float] = float, *, low: float | None = None,
               high: float | None = None, above_low: bool = False) -> Callable[[str], int | float]:
    """An argparse ``type``: ``kind(text)`` when it is finite and in ``[low, high]`` (``(low, high]`` with
    ``above_low``), else argparse's error, which names the option."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'a whole number' if kind is int else 'a number'}, got {text!r}") from None
        problem = number_problem(value, integer=kind is int, low=low, high=high, above_low=above_low)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse
