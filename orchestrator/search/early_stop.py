"""Early stopping inside one trial: a run past its peak has nothing left to show.

Why not Optuna's ``PatientPruner``: it *prunes* (the trial ends PRUNED, with no value), and it wraps a
pruner, so a run that simply peaked would read to TPE like a loser and leave the study without its best
epoch's score. A run past its peak is the opposite of a loser: its best checkpoint is already on disk.
So the search stops the trainer (``stop_requested = "past_peak"``) and the trial completes with the
value of its best epoch; ``pruning.py`` does the pruning, and does not count such cut-short curves as
evidence of how much a run can still gain.
"""

from __future__ import annotations

from collections.abc import Mapping


def past_peak(scores: Mapping[int, float], patience: int) -> bool:
    """True when none of the last ``patience`` sample epochs beat the best one before them."""
    if patience <= 0 or len(scores) <= patience:
        return False
    ordered = [scores[epoch] for epoch in sorted(scores)]
    return max(ordered[-patience:]) <= max(ordered[:-patience])
