"""What sd-scripts makes of a preset's training arguments, for code outside ``kohya/`` to ask.

sd-scripts reads every table of ``--config_file`` into one flat namespace, fills what is unset with its
own defaults, and saves a checkpoint every ``save_every_n_epochs`` plus the final one. Those rules live
here, so that a change in sd-scripts touches this package only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Tables of our preset format that hold no sd-scripts argument ([preset] describes, [dataset] is rendered
# into the dataset config).
NON_ARGUMENT_TABLES = frozenset({"preset", "dataset"})


def flatten_training_tables(preset_data: Mapping[str, Any]) -> dict[str, Any]:
    """All kohya arguments of a preset in one namespace, as sd-scripts reads its config file."""
    flat: dict[str, Any] = {}
    for name, section in preset_data.items():
        if name not in NON_ARGUMENT_TABLES and isinstance(section, Mapping):
            flat.update(section)
    return flat


@dataclass(frozen=True)
class TrainingValues:
    """The values sd-scripts will train with, unset ones at sd-scripts' defaults."""

    learning_rate: float  # of the U-Net: ``unet_lr`` when set, else ``learning_rate``
    optimizer_type: str
    network_dim: int
    network_alpha: float
    max_train_epochs: int
    lr_warmup_steps: int
    gradient_accumulation_steps: int
    # What the flow-matching families' rules read (search/constraints.py); sd-scripts' defaults.
    network_module: str = "networks.lora"
    blocks_to_swap: int = 0
    cpu_offload_checkpointing: bool = False
    timestep_sampling: str = "sigma"
    discrete_flow_shift: float = 3.0
    cache_text_encoder_outputs: bool = False
    varies_captions: bool = False  # shuffle_caption, caption (tag) dropout or token warm-up: captions change per step


_CAPTION_VARIATION = ("shuffle_caption", "caption_dropout_rate", "caption_tag_dropout_rate", "token_warmup_step")


def training_values(flat: Mapping[str, Any]) -> TrainingValues:
    """Read :class:`TrainingValues` from flat kohya arguments; sd-scripts' defaults fill what is unset
    (dim 4, alpha 1, AdamW, accumulation 1)."""
    return TrainingValues(
        learning_rate=float(flat.get("unet_lr") or flat.get("learning_rate") or 0.0),
        optimizer_type=str(flat.get("optimizer_type") or "AdamW"),
        network_dim=int(flat.get("network_dim", 4) or 4),
        network_alpha=float(flat.get("network_alpha", 1.0)),
        max_train_epochs=int(flat.get("max_train_epochs") or 0),
        lr_warmup_steps=int(flat.get("lr_warmup_steps") or 0),
        gradient_accumulation_steps=int(flat.get("gradient_accumulation_steps") or 1),
        network_module=str(flat.get("network_module") or "networks.lora"),
        blocks_to_swap=int(flat.get("blocks_to_swap") or 0),
        cpu_offload_checkpointing=bool(flat.get("cpu_offload_checkpointing")),
        timestep_sampling=str(flat.get("timestep_sampling") or "sigma"),
        discrete_flow_shift=float(flat.get("discrete_flow_shift") or 3.0),
        # sd-scripts turns the cache on when it is to go to disk.
        cache_text_encoder_outputs=bool(flat.get("cache_text_encoder_outputs")
                                        or flat.get("cache_text_encoder_outputs_to_disk")),
        varies_captions=any(bool(flat.get(key) or flat.get(f"dataset.{key}")) for key in _CAPTION_VARIATION),
    )


@dataclass(frozen=True)
class SavePlan:
    """What a run writes to disk: ``checkpoints`` LoRA files of ``network_dim`` (None: not set)."""

    checkpoints: int
    network_dim: int | None
    with_state: bool  # a training state (weights and optimizer moments) beside each checkpoint
    states_on_disk: int = 0  # the most states on disk at once (0 without save_state)


def save_plan(flat: Mapping[str, Any]) -> SavePlan:
    """One checkpoint every ``save_every_n_epochs`` (the last epoch's is the final one), else the final one.

    A state is saved with every checkpoint (the final one's is ``{output_name}-state``);
    ``save_last_n_epochs_state`` (else ``save_last_n_epochs``) = n keeps n epoch states, and the newest is
    written before the oldest is removed, so n + 1 are on disk at once."""
    epochs = _whole_number(flat.get("max_train_epochs"), 1)
    every = _whole_number(flat.get("save_every_n_epochs"), 0)
    count = 1 + (math.ceil(epochs / every) - 1 if every else 0)
    with_state = bool(flat.get("save_state"))
    kept = _whole_number(flat.get("save_last_n_epochs_state"), 0) or _whole_number(flat.get("save_last_n_epochs"), 0)
    states = (min(count, kept + 1) if kept else count) if with_state else 0
    return SavePlan(count, _whole_number(flat.get("network_dim"), 0) or None, with_state, states)


def _whole_number(value: Any, default: int) -> int:
    """A positive int setting, or ``default``: a wrong type is the config check's to report, not a crash here."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default
