"""The training state sd-scripts saves and resumes from, and how a run is paused and taken up again.

Read at the pinned commit (48d368fa; ``train_network.py`` and ``library/train_util.py``):

- **Where.** With ``save_state``, a state folder ``{output_name}-{epoch:06d}-state/`` is written at the
  end of an epoch only when that epoch also saves a checkpoint (``save_every_n_epochs`` divides it and it
  is not the last epoch), *after* the checkpoint and *before* the epoch's sample images; at the end of
  the run ``{output_name}-state/`` is written. ``save_last_n_epochs_state = 1`` removes the previous
  epoch state once the new one is saved, so one state is kept (the checkpoints are not touched). A
  state holds the LoRA weights (fp32), the optimizer moments, the LR scheduler, the RNG states and
  ``train_state.json`` = ``{"current_epoch": E, "current_step": S}``.
- **Resume.** ``--resume STATE`` loads all of it through ``accelerator.load_state`` (so the learning-rate
  schedule continues where it was, with the scheduler's own step count); ``S`` then decides the epoch to
  start from (``S // steps_per_epoch``), and the epochs before it are skipped without reading data
  (no ``--skip_until_initial_step``: a state saved at an epoch's end has no partial epoch to skip).
  ``max_train_epochs`` must stay what it was: the total steps (and so the LR schedule's length) are
  computed from it, which is sd-scripts #1999's "resume trains too many steps" when it is changed.
- **The step counter restarts at 0** (sd-scripts #2171, #2248, both open at this commit): ``global_step``
  is reset to 0 after the skip, so the progress bar counts the resumed segment from 1 (its total is the
  whole run's), ``generating sample images at step N`` and the saved LoRA's ``ss_steps`` count from the
  resume, and -- the harmful part -- every state the resumed segment saves records the segment's own
  steps as ``current_step``. Resuming such a state a second time starts from the wrong epoch (it trains
  epochs again, or skips them). Our workaround: before a resume, :func:`record_true_step` writes the
  true step count into the state's ``train_state.json`` (the runner knows it from the run record), and
  the runner adds it to every step the segment logs (``RunRecord.step_offset``).
- **``--sample_at_first`` samples again after a resume** (it checks ``global_step``, which is 0 again),
  under the before-training name ``e000000``, overwriting the base model's samples that evaluation uses
  as its floor with the resumed LoRA's: a resumed segment is rendered with :data:`RESUME_ARGUMENTS`.
- **The data order: a resumed process must shuffle like a straight one.** The dataset learns the epoch from
  the collator (``collator_class``, ``library/train_util.py`` ~6648), *after* an epoch's first batch was
  fetched, and ``set_current_epoch`` (~781) reshuffles the buckets once per epoch it moves on from *its own*
  ``current_epoch`` (each shuffle seeded ``seed + epoch``, ~1087). With ``max_data_loader_n_workers = 0``
  the collator gets the main process's dataset (``train_network.py`` ~564), which keeps its epoch across
  epochs: every epoch's first batch is drawn in the previous epoch's order, and a resumed process holds
  the order of epoch 0 -- so the first batch after a resume can be another image than in a straight run
  (and cached latents are VAE *samples*, so even two identical images are different latents). With one
  or more workers that are not persistent, every epoch's workers are forked from the main dataset, which
  then never leaves epoch 0, in a straight run and a resumed one alike: the orders are the same.
  :func:`pausable_arguments` therefore renders a pausable run with at least one non-persistent worker
  (persistent workers keep their dataset like the main process does). Measured on CPU
  (``tests/runner/test_real_pause_resume.py``, resumed at epoch 2 of 4): with no worker the final LoRA is
  0.19 of a tensor's norm off a straight run's; with one fresh worker per epoch it is bit-identical, as
  two straight runs are. The cost: a worker process forked (spawned on Windows, which pickles the
  dataset) per epoch. A run kept at no worker still trains correctly, only not in the straight run's order.

This module is the only one that knows the state folders' contents; ``outputs.py`` knows their names.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from orchestrator.common.atomic import atomic_write_json
from orchestrator.kohya.outputs import SAMPLE_AT_FIRST_ARGUMENT, find_state_dirs

TRAIN_STATE_FILE = "train_state.json"
EPOCH_KEY = "current_epoch"
STEP_KEY = "current_step"
#: Kept beside sd-scripts' keys (it reads only ``current_step``): the count sd-scripts wrote, before
#: :func:`record_true_step` replaced it.
SEGMENT_STEP_KEY = "lora_pipeline_segment_step"

WORKERS_ARGUMENT = "max_data_loader_n_workers"
PERSISTENT_WORKERS_ARGUMENT = "persistent_data_loader_workers"

#: The arguments a resumed segment adds to its run's own (see the module docstring).
RESUME_ARGUMENTS: Mapping[str, Any] = {SAMPLE_AT_FIRST_ARGUMENT: False}


@dataclass(frozen=True)
class TrainState:
    """One saved state folder and what its ``train_state.json`` says."""

    path: Path
    epoch: int
    step: int


def read_train_state(state_dir: str | Path) -> TrainState | None:
    """The state in ``state_dir``; None when it has no readable ``train_state.json`` (a half-written or
    foreign folder, which cannot be resumed from)."""
    try:
        data = json.loads((Path(state_dir) / TRAIN_STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    epoch, step = data.get(EPOCH_KEY), data.get(STEP_KEY)
    if not (_count(epoch) and _count(step)):
        return None
    return TrainState(path=Path(state_dir), epoch=epoch, step=step)


def _count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def record_true_step(state_dir: str | Path, step: int) -> None:
    """Write ``step`` (the run's steps up to this state, across every segment) as the state's
    ``current_step``, keeping what sd-scripts wrote under :data:`SEGMENT_STEP_KEY`; atomic, idempotent."""
    path = Path(state_dir) / TRAIN_STATE_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get(STEP_KEY) == step:
        return
    data.setdefault(SEGMENT_STEP_KEY, data.get(STEP_KEY))
    data[STEP_KEY] = int(step)
    atomic_write_json(path, data)


def pausable_arguments(training: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments that make every sample epoch of a run a point it can be paused at and resumed from:
    a state saved at each sample epoch (the checkpoint cadence is the state cadence in sd-scripts, so it
    is set to the sample cadence unless it already divides it), only the newest kept, and data loader
    workers that are started afresh each epoch (at least one, none persistent; the run's own count when it
    has one), so that a resumed segment draws its batches in a straight run's order (see the module
    docstring: with no worker the main process's dataset carries its bucket order from epoch to epoch,
    and a resumed process starts it from epoch 0). The cost: one worker process forked per epoch. Empty
    when the run samples by steps or not at all (there is no sample epoch to pause at)."""
    every = training.get("sample_every_n_epochs")
    if not _positive(every):
        return {}
    save_every = training.get("save_every_n_epochs")
    divides = _positive(save_every) and every % save_every == 0
    return {"save_state": True, "save_every_n_epochs": save_every if divides else every,
            "save_last_n_epochs_state": 1, **resumable_loader_arguments(training)}


def resumable_loader_arguments(training: Mapping[str, Any]) -> dict[str, Any]:
    """Data loader workers started afresh each epoch (the run's own count, at least one; none persistent):
    what any run that may be resumed needs so that the resumed epochs draw a straight run's batches."""
    workers = training.get(WORKERS_ARGUMENT)
    return {WORKERS_ARGUMENT: workers if _positive(workers) else 1, PERSISTENT_WORKERS_ARGUMENT: False}


def _positive(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def newest_state(run_dir: str | Path, output_name: str) -> TrainState | None:
    """The state to resume from: the highest (epoch, step). The epoch decides first, because a state
    saved by a resumed segment may carry the segment's own (smaller) step count."""
    states = [state for path in find_state_dirs(run_dir, output_name).values()
              if (state := read_train_state(path)) is not None]
    return max(states, key=lambda s: (s.epoch, s.step, s.path.stat().st_mtime), default=None)


def state_bytes(run_dir: str | Path, output_name: str) -> int:
    """Bytes the run's saved states take on disk (every state folder, every file in it)."""
    total = 0
    for folder in find_state_dirs(run_dir, output_name).values():
        for path in folder.rglob("*"):
            try:
                if path.is_file() and not path.is_symlink():
                    total += path.stat().st_size
            except OSError:  # removed while we count (sd-scripts drops the older state)
                continue
    return total


def remove_states(run_dir: str | Path, output_name: str) -> list[Path]:
    """Delete every state folder of the run (its checkpoints and samples stay); the folders removed."""
    removed = []
    for folder in find_state_dirs(run_dir, output_name).values():
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed
