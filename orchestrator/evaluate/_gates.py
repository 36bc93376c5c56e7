"""Gates: findings that make an epoch unusable, whatever its total.

An epoch that fails one cannot be chosen while an epoch passing every gate exists (the rule is in
``_choice.py``). Each verdict carries the measured value and the threshold, for the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from orchestrator.evaluate._config import GateSettings
from orchestrator.evaluate._samples import ImageScore

GATES = ("memorisation", "loss", "collapse", "broken_samples")


@dataclass(frozen=True)
class GateVerdict:
    gate: str
    passed: bool
    detail: str  # the measured value against the threshold, or why the gate could not be checked

    def to_dict(self) -> dict[str, object]:
        return {"gate": self.gate, "passed": self.passed, "detail": self.detail}


def sample_gates(images: list[ImageScore], all_pairs_similarity: float | None, settings: GateSettings, *,
                 copying_checked: bool, copying_similarity: float) -> list[GateVerdict]:
    """Memorisation, collapse and broken-sample verdicts of one epoch's samples."""
    count = max(1, len(images))
    if copying_checked:
        copied = sum(1 for image in images if image.copied)
        share = copied / count
        memorisation = GateVerdict("memorisation", share <= settings.max_copied_share,
                                   f"{copied} of {len(images)} samples ({share:.0%}) reproduce a training frame "
                                   f"(cosine >= {copying_similarity:g}); gate: more than "
                                   f"{settings.max_copied_share:.0%}")
    else:
        memorisation = GateVerdict("memorisation", True, "not checked: no training images")
    if all_pairs_similarity is None or not math.isfinite(all_pairs_similarity):
        collapse = GateVerdict("collapse", True, "not checked: fewer than 2 samples")
    else:
        collapse = GateVerdict("collapse", all_pairs_similarity < settings.collapse_similarity,
                               f"mean pairwise similarity {all_pairs_similarity:.3f}; gate: at or above "
                               f"{settings.collapse_similarity:g}")
    broken = sum(1 for image in images if image.broken)
    broken_share = broken / count
    broken_verdict = GateVerdict("broken_samples", broken_share <= settings.max_broken_share,
                                 f"{broken} of {len(images)} samples black, blank or not finite; gate: more "
                                 f"than {settings.max_broken_share:.0%}")
    return [memorisation, collapse, broken_verdict]


def loss_gate(first_bad_step: int | None, first_bad_epoch: int | None, value: float | None,
              epoch: int, known: bool) -> GateVerdict:
    """The training loss went NaN/inf at or before ``epoch`` (the weights are then broken)."""
    if not known:
        return GateVerdict("loss", True, "not checked: no losses in the run record")
    if first_bad_step is None or (first_bad_epoch is not None and first_bad_epoch > epoch):
        return GateVerdict("loss", True, "finite loss up to this epoch")
    return GateVerdict("loss", False, f"loss {value} from step {first_bad_step} (epoch {first_bad_epoch})")


def failed(verdicts: list[GateVerdict]) -> tuple[str, ...]:
    return tuple(v.gate for v in verdicts if not v.passed)
