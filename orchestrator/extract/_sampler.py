"""The N sharpest frames of a shot, spread across it, in memory bounded by N (not by the shot's length).

A shot is cut into equal spans ("slots") of a power-of-two number of frames; each slot keeps only its
sharpest candidate. When there are more than ``4 * N`` slots, neighbours merge pairwise (the span
doubles), so at most ``4 * N + 1`` full frames are held whatever the shot's length. At the end the slots
are grouped into N equal runs and each run gives its sharpest frame at least ``min_gap`` frames after the
previous pick (closer is the same moment); a run with no such frame gives none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Candidate:
    frame: int
    sharpness: float
    image: Any  # the full-resolution frame (BGR array)


class SpreadSampler:
    def __init__(self, start_frame: int, per_shot: int, *, min_gap: int) -> None:
        if per_shot < 1:
            raise ValueError("per_shot must be >= 1")
        self.start = start_frame
        self.per_shot = per_shot
        self.min_gap = max(1, min_gap)
        self.span = 1
        self.slots: dict[int, Candidate] = {}
        self.capacity = 4 * per_shot

    def offer(self, frame: int, sharpness: float, image: Any) -> None:
        slot = (frame - self.start) // self.span
        held = self.slots.get(slot)
        if held is None or sharpness > held.sharpness:
            self.slots[slot] = Candidate(frame, sharpness, image)
        while len(self.slots) > self.capacity:
            self._merge()

    def _merge(self) -> None:
        merged: dict[int, Candidate] = {}
        for slot, candidate in self.slots.items():
            parent = slot // 2
            held = merged.get(parent)
            if held is None or candidate.sharpness > held.sharpness:
                merged[parent] = candidate
        self.slots = merged
        self.span *= 2

    def split_at(self, frame: int) -> SpreadSampler:
        """Move the candidates from ``frame`` on into a new sampler (a cut reported after those frames)."""
        later = SpreadSampler(frame, self.per_shot, min_gap=self.min_gap)
        for candidate in sorted(self.slots.values(), key=lambda c: c.frame):
            if candidate.frame >= frame:
                later.offer(candidate.frame, candidate.sharpness, candidate.image)
        self.slots = {slot: c for slot, c in self.slots.items() if c.frame < frame}
        return later

    def picks(self) -> list[Candidate]:
        """Up to ``per_shot`` candidates in frame order: the sharpest of each of N equal runs of slots."""
        ordered = [self.slots[slot] for slot in sorted(self.slots)]
        if not ordered:
            return []
        runs = min(self.per_shot, len(ordered))
        kept: list[Candidate] = []
        for run in range(runs):
            members = ordered[run * len(ordered) // runs:(run + 1) * len(ordered) // runs]
            for candidate in sorted(members, key=lambda c: -c.sharpness):
                if not kept or candidate.frame - kept[-1].frame >= self.min_gap:
                    kept.append(candidate)
                    break
        return kept
