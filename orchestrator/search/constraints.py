"""The seven safety rules of the guide: combinations that are known to waste a training run.

Each rule is a small named function over :class:`TrainingChoices`; :func:`check_constraints` runs them
all so that a rejection names *every* rule that failed, not only the first. A rejected trial is
recorded as pruned before any GPU time is spent (see ``study.py``), and each rule's verdict is also
given to Optuna as a constraint value so that TPE learns to stay away from the region.

The seven are SD1.5/SDXL lore. A trial of a flow-matching family (FLUX.1, Chroma, SD3.5: told by its LoRA
module, ``kohya/families.py``) is checked by :data:`FLOW_SAFETY_RULES` instead, each a fact of the pinned
sd-scripts (an assertion in its script, or its documentation), named where it is defined.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.kohya.arguments import TrainingValues, training_values
from orchestrator.kohya.families import FAMILIES


@dataclass(frozen=True)
class TrainingChoices(TrainingValues):
    """The values the rules look at, taken from a trial's merged config (base + parameters)."""

    # The sampled ratio when the space has one: int(128 x 0.85) = 108 would read back as 0.84.
    network_alpha_ratio: float | None = None

    @property
    def alpha_ratio(self) -> float:
        if self.network_alpha_ratio is not None:
            return self.network_alpha_ratio
        return self.network_alpha / self.network_dim if self.network_dim else 0.0

    @property
    def uses_8bit_adam(self) -> bool:
        return self.optimizer_type.lower() == "adamw8bit"

    @property
    def uses_plain_adamw(self) -> bool:
        return self.optimizer_type.lower() == "adamw"

    @classmethod
    def from_flat_config(cls, flat: Mapping[str, Any]) -> TrainingChoices:
        """The rule inputs of a trial's flat config, as sd-scripts will read it (``kohya.arguments``)."""
        return cls(
            **asdict(training_values(flat)),
            network_alpha_ratio=(float(flat["network_alpha_ratio"]) if "network_alpha_ratio" in flat
                                 else None),
        )


@dataclass(frozen=True)
class SafetyRule:
    name: str
    explanation: str
    violated: Callable[[TrainingChoices], bool]


def _high_lr_with_8bit_adam(c: TrainingChoices) -> bool:
    return c.learning_rate > 1.2e-4 and c.uses_8bit_adam


def _alpha_equals_dim(c: TrainingChoices) -> bool:
    return abs(c.network_alpha - c.network_dim) < 1


def _large_dim_few_epochs(c: TrainingChoices) -> bool:
    return c.network_dim >= 256 and c.max_train_epochs < 16


def _high_lr_short_warmup(c: TrainingChoices) -> bool:
    return c.learning_rate > 1e-4 and c.lr_warmup_steps < 100


def _high_lr_without_accumulation(c: TrainingChoices) -> bool:
    return c.gradient_accumulation_steps == 1 and c.learning_rate > 1.1e-4


def _high_alpha_ratio_unstabilised(c: TrainingChoices) -> bool:
    stabilised = (c.max_train_epochs >= 16 and c.gradient_accumulation_steps >= 2
                  and c.uses_plain_adamw and c.lr_warmup_steps >= 150)
    return c.alpha_ratio >= 0.75 and not stabilised


def _very_high_alpha_ratio_with_high_lr(c: TrainingChoices) -> bool:
    return c.alpha_ratio >= 0.85 and c.learning_rate > 1e-4


SAFETY_RULES: tuple[SafetyRule, ...] = (
    SafetyRule("high_lr_with_8bit_adam", "learning rate > 1.2e-4 with AdamW8bit", _high_lr_with_8bit_adam),
    SafetyRule("alpha_equals_dim", "|network_alpha - network_dim| < 1", _alpha_equals_dim),
    SafetyRule("large_dim_few_epochs", "network_dim >= 256 with fewer than 16 epochs", _large_dim_few_epochs),
    SafetyRule("high_lr_short_warmup", "learning rate > 1e-4 with fewer than 100 warmup steps",
               _high_lr_short_warmup),
    SafetyRule("high_lr_without_accumulation", "learning rate > 1.1e-4 without gradient accumulation",
               _high_lr_without_accumulation),
    SafetyRule("high_alpha_ratio_unstabilised",
               "alpha/dim >= 0.75 needs epochs >= 16, accumulation >= 2, AdamW and warmup >= 150",
               _high_alpha_ratio_unstabilised),
    SafetyRule("very_high_alpha_ratio_with_high_lr", "alpha/dim >= 0.85 with learning rate > 1e-4",
               _very_high_alpha_ratio_with_high_lr),
)
RULE_NAMES: tuple[str, ...] = tuple(rule.name for rule in SAFETY_RULES)


# The flow-matching families (FLUX.1, Chroma, SD3.5) get rules of their own: the seven above are SD1.5 lore
# and do not carry over. Each of these is a fact of the pinned sd-scripts, not a taste:
_FLUX_MODULE = FAMILIES["flux1"].network_module


def _swap_with_cpu_offload(c: TrainingChoices) -> bool:
    # flux_train_network.py asserts it; docs/flux_train_network.md 6.1 and sd3_train_network.md say so.
    return c.blocks_to_swap > 0 and c.cpu_offload_checkpointing


def _flux_swap_beyond_35(c: TrainingChoices) -> bool:
    # docs/flux_train_network.md 6.1: "FLUX.1 supports up to 35 blocks for swapping".
    return c.network_module == _FLUX_MODULE and c.blocks_to_swap > 35


def _flow_shift_ignored(c: TrainingChoices) -> bool:
    # docs/flux_train_network.md: discrete_flow_shift "is ignored when timestep_sampling is set to other than
    # shift": such a trial repeats another one under a different name.
    return c.network_module == _FLUX_MODULE and c.discrete_flow_shift != 3.0 and c.timestep_sampling != "shift"


def _cached_text_encoders_with_varying_captions(c: TrainingChoices) -> bool:
    # flux_train_network.py / sd3_train_network.py assert it: a cached embedding cannot follow a caption that
    # changes every step (shuffle_caption, caption dropout, token warm-up).
    return c.cache_text_encoder_outputs and c.varies_captions


FLOW_SAFETY_RULES: tuple[SafetyRule, ...] = (
    SafetyRule("swap_with_cpu_offload", "blocks_to_swap with cpu_offload_checkpointing", _swap_with_cpu_offload),
    SafetyRule("flux_swap_beyond_35", "FLUX.1 blocks_to_swap > 35", _flux_swap_beyond_35),
    SafetyRule("flow_shift_ignored", "discrete_flow_shift set but timestep_sampling is not 'shift'",
               _flow_shift_ignored),
    SafetyRule("cached_text_encoders_with_varying_captions",
               "cache_text_encoder_outputs with shuffled, dropped-out or warmed-up captions",
               _cached_text_encoders_with_varying_captions),
)


def safety_rules_for(choices: TrainingChoices) -> tuple[SafetyRule, ...]:
    """The rules of the family whose LoRA module the trial trains: flow-matching families have their own."""
    family = next((f for f in FAMILIES.values() if f.network_module == choices.network_module), None)
    return FLOW_SAFETY_RULES if family is not None and family.objective == "flow" else SAFETY_RULES


@dataclass(frozen=True)
class ConstraintVerdict:
    failed: tuple[SafetyRule, ...]
    rules: tuple[SafetyRule, ...] = SAFETY_RULES  # every rule checked: one constraint value each

    @property
    def accepted(self) -> bool:
        return not self.failed

    @property
    def failed_names(self) -> list[str]:
        return [rule.name for rule in self.failed]

    @property
    def reason(self) -> str:
        """One line naming every failed rule, e.g. ``rejected by 2 safety rules: a (...); b (...)``."""
        if not self.failed:
            return ""
        parts = "; ".join(f"{rule.name} ({rule.explanation})" for rule in self.failed)
        count = len(self.failed)
        return f"rejected by {count} safety rule{'s' if count > 1 else ''}: {parts}"

    def constraint_values(self) -> dict[str, float]:
        """Optuna's convention: > 0 violated, <= 0 feasible; one value per rule."""
        failed = set(self.failed_names)
        return {rule.name: 1.0 if rule.name in failed else 0.0 for rule in self.rules}


def check_constraints(choices: TrainingChoices,
                      rules: tuple[SafetyRule, ...] | None = None) -> ConstraintVerdict:
    """Every rule ``choices`` violates; the rules are its family's (:func:`safety_rules_for`) unless given."""
    rules = safety_rules_for(choices) if rules is None else rules
    return ConstraintVerdict(failed=tuple(rule for rule in rules if rule.violated(choices)), rules=rules)
