"""An image encoder built for ranking tests: it sees the toy characters the way a real encoder would
see real ones, through the same seam as open_clip (``identity``, ``preprocess``, ``embed_tensors``,
``embed_texts``, ``embedding_dim``).

Random-weight CLIP cannot tell one character from another, so "better" could not be known by
construction. This encoder can, and deterministically: on a 32 px box-filtered copy (noise averages
out to grey there) each pixel is matched to the known character colours; the embedding is

- which character colours make up the figure, as a share of the figure (identity: the same for every
  pose of one character), plus one "nothing recognised" component,
- where the figure is, on an 8 x 8 grid (pose and view: differs between poses; an exact copy of a
  frame is identical to it).

Text rows live in dimensions of their own, so CLIP-T is 0 for every image and the style anchors are
equally likely for every image: those metrics cannot decide a ranking test.
"""

from __future__ import annotations

import hashlib
from dataclasses import astuple

import numpy as np
from PIL import Image

from orchestrator.toy.character_drawing import HERO, STRANGER, CharacterLook

#: The base model's generic character: what an SD model draws for "a boy" before the LoRA.
GENERIC = CharacterLook("generic", skin=(180, 120, 90), hair=(30, 30, 30), shirt=(230, 200, 60), stripe=None,
                        shorts=(40, 60, 120), eyes=(30, 30, 30), square_head=False, spiky_hair=False)
_LOOKS = (HERO, STRANGER, GENERIC)
_EYE_WHITE = (250, 250, 250)
_SIDE = 32
_GRID = 8
_MATCH_DISTANCE = 40.0
_NOTHING_WEIGHT = 0.3
_IDENTITY_SHARE = 0.7
_TEXT_DIMS = 8


def _palette() -> np.ndarray:
    colours: list[tuple[int, int, int]] = [_EYE_WHITE]
    for look in _LOOKS:
        for colour in astuple(look)[1:7]:
            if colour is not None and colour not in colours:
                colours.append(colour)
    return np.array(colours, dtype=np.float64)


class CharacterEncoder:
    def __init__(self) -> None:
        self.palette = _palette()
        self.identity = "test:character-encoder/v1"
        self.device = "cpu"
        self.embedding_dim = len(self.palette) + 1 + _GRID * _GRID + _TEXT_DIMS

    def preprocess(self, image: Image.Image):
        import torch

        small = np.asarray(image.convert("RGB").resize((_SIDE, _SIDE), Image.Resampling.BOX), dtype=np.float64)
        distances = np.linalg.norm(small.reshape(-1, 1, 3) - self.palette[None, :, :], axis=2)
        nearest = distances.argmin(axis=1)
        matched = distances.min(axis=1) < _MATCH_DISTANCE
        counts = np.bincount(nearest[matched], minlength=len(self.palette)).astype(np.float64)
        figure = matched.mean()
        composition = np.sqrt(counts / counts.sum()) if counts.sum() else np.zeros_like(counts)
        identity = np.concatenate([composition, [_NOTHING_WEIGHT * (1.0 - figure)]])
        identity /= max(np.linalg.norm(identity), 1e-12)
        mask = matched.reshape(_SIDE, _SIDE).astype(np.float64)
        cell = _SIDE // _GRID
        layout = mask.reshape(_GRID, cell, _GRID, cell).mean(axis=(1, 3)).ravel()
        layout = layout / max(np.linalg.norm(layout), 1e-12)
        vector = np.concatenate([np.sqrt(_IDENTITY_SHARE) * identity, np.sqrt(1 - _IDENTITY_SHARE) * layout,
                                 np.zeros(_TEXT_DIMS)])
        return torch.from_numpy(vector.astype(np.float32))

    def embed_tensors(self, batch) -> np.ndarray:
        rows = batch.numpy().astype(np.float32)
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        rows = np.zeros((len(texts), self.embedding_dim), dtype=np.float32)
        for row, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
            vector = np.random.default_rng(seed).normal(size=_TEXT_DIMS)
            rows[row, -_TEXT_DIMS:] = vector / np.linalg.norm(vector)
        return rows
