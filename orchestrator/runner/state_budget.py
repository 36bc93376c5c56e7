"""The disk that paused runs' training states may take, and which states go when it is full.

A paused run keeps its newest training state (``kohya/train_state.py``) so it can continue later; a state
of an SD1.5 LoRA of rank 32 is about 120 MB, an SDXL one about 350 MB, so a search that pauses many runs
needs a budget. The scheduler measures each paused run (:func:`run_state_bytes`), asks
:func:`states_to_discard` which states to delete, least promising first, before it pauses or starts one
more, and a deleted state's run becomes final. The pre-flight keeps the unused part of the budget free
(``check_disk``'s ``reserved_bytes``, see :func:`reserve_bytes`), so a trainer never fills the disk that
paused states were promised.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from orchestrator.common.errors import UserInputError
from orchestrator.common.numbers import number_problem
from orchestrator.kohya.train_state import state_bytes
from orchestrator.runner.record import load_run_record

DEFAULT_STATE_BUDGET_GB = 20.0
Key = TypeVar("Key", bound=Hashable)


def budget_bytes(gigabytes: float, *, key: str = "state-budget") -> int:
    """``--state-budget GB`` in bytes (GB = 2**30 bytes, as the pre-flight's disk messages count); 0 keeps
    no paused state at all (every pause becomes final)."""
    problem = number_problem(gigabytes, low=0)
    if problem:
        raise UserInputError(problem, key=key)
    return int(gigabytes * 2**30)


def run_state_bytes(run_dir: str | Path, output_name: str | None = None) -> int:
    """Bytes the run in ``run_dir`` keeps in saved training states (0 when it has none). ``output_name``
    defaults to the run record's."""
    if output_name is None:
        try:
            output_name = load_run_record(run_dir).output_name
        except UserInputError:
            return 0
    return state_bytes(run_dir, output_name)


def states_to_discard(paused: Sequence[tuple[Key, int]], budget: int, *, incoming: int = 0) -> list[Key]:
    """The paused runs whose states must go so that the rest plus ``incoming`` bytes (the state a run
    about to pause will keep) fit in ``budget``: ``paused`` lists ``(run, state bytes)`` least promising
    first, and runs are taken from its front until the rest fit. Empty when everything fits; every run
    when even ``incoming`` alone does not (the incoming run's own pause is then the caller's to drop)."""
    used = sum(size for _, size in paused) + incoming
    chosen: list[Key] = []
    for key, size in paused:
        if used <= budget:
            break
        chosen.append(key)
        used -= size
    return chosen


def reserve_bytes(budget: int, paused_sizes: Iterable[int]) -> int:
    """What the pre-flight keeps free for paused states: the budget not yet used (used bytes are already
    off the disk's free space)."""
    return max(0, budget - sum(paused_sizes))
