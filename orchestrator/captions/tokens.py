"""Caption length in the family's text-encoder tokens: text past the encoder's window is silently cut.

The family decides (``orchestrator/kohya/families.py``): SD1.5 and SDXL read captions through CLIP, FLUX.1,
Chroma and SD3.5 through T5-XXL (CLIP-L only adds a pooled vector there).

- CLIP: open_clip's ``SimpleTokenizer`` (its BPE file ships with the package: no download) has a 77-token
  window including its start and end tokens, so 75 tokens of caption. SD1.5 captions aim for 40-75 tokens;
  SDXL runs are usually trained with a longer token length (three windows, 225 tokens).
- T5: sd-scripts' ``--t5xxl_max_token_length`` (FLUX.1 dev 512, SD3 256) counts T5's SentencePiece tokens
  *including* the end token ``</s>``. Counted exactly with T5's ``tokenizer.json``, which the pinned sd-scripts
  ships (``configs/t5_old/``, the same 32k vocabulary as T5 v1.1 XXL); read with the ``tokenizers`` package.
  Without a checkout the count is :func:`t5_token_estimate`, a documented over-estimate.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from orchestrator.kohya.families import CLIP_WINDOW, FAMILIES, t5_tokenizer_file

#: Content-token limits per model family (the family table's, here for the captions stage's callers).
MAX_TOKENS: dict[str, int] = {name: family.max_caption_tokens for name, family in FAMILIES.items()}
SD15_MIN_TOKENS = FAMILIES["sd15"].min_caption_tokens
assert MAX_TOKENS["sd15"] == CLIP_WINDOW - 2
_T5_PIECES = re.compile(r"[A-Za-z]+|\d|[^\sA-Za-z\d]")
_LETTERS_PER_T5_TOKEN = 3  # SentencePiece pieces of English words average ~4.5 letters: 3 over-counts


@dataclass(frozen=True)
class TokenCheck:
    """Token counts of captions and the ones that will be cut (``too_long``) or are thin (``too_short``)."""

    family: str
    max_tokens: int
    counts: dict[Path, int]
    too_long: tuple[Path, ...]
    too_short: tuple[Path, ...]
    tokenizer: str = "CLIP"  # "CLIP", "T5" or "T5 (estimate)": what counted
    min_tokens: int = 0  # below it a caption is thin (the family's target; 0: none)

    @property
    def shortest(self) -> int:
        return min(self.counts.values(), default=0)

    @property
    def longest(self) -> int:
        return max(self.counts.values(), default=0)


@lru_cache(maxsize=1)
def _clip_tokenizer():
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer()


def clip_token_count(text: str) -> int:
    """Number of CLIP BPE tokens in ``text``, without the start and end tokens."""
    return len(_clip_tokenizer().encode(text))


@lru_cache(maxsize=4)
def _t5_tokenizer(path: str):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(path)


def t5_token_count(text: str, tokenizer_file: Path) -> int:
    """T5 tokens of ``text`` as sd-scripts counts them against ``t5xxl_max_token_length`` (with ``</s>``)."""
    return len(_t5_tokenizer(str(tokenizer_file)).encode(text).ids)


def t5_token_estimate(text: str) -> int:
    """An over-estimate of :func:`t5_token_count` for natural-language captions, with no tokenizer at hand.

    Every digit and every other non-letter, non-space character counts one token; a run of ASCII letters
    counts one per 3 letters, rounded up; plus the end token. On English captions it over-counts by 10-40%
    (tests/captions hold it above the real count); it may under-count letter soup such as ``xqzj``.
    """
    pieces = _T5_PIECES.findall(text)
    return 1 + sum(math.ceil(len(p) / _LETTERS_PER_T5_TOKEN) if p.isalpha() else 1 for p in pieces)


def _default_t5_tokenizer() -> Path | None:
    from orchestrator.config.paths import load_paths

    try:
        return t5_tokenizer_file(load_paths().sd_scripts)
    except Exception:  # noqa: BLE001 - an unreadable paths file only means "estimate"
        return None


def check_token_lengths(captions: dict[Path, str], *, family: str = "sd15",
                        t5_tokenizer: Path | None = None) -> TokenCheck:
    """Count tokens of each caption (keyed by caption file) against ``family``'s limit.

    ``t5_tokenizer``: T5's ``tokenizer.json`` for the T5 families; default: the configured sd-scripts
    checkout's, else the estimate.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; known: {sorted(FAMILIES)}")
    model_family = FAMILIES[family]
    if model_family.text_encoder == "t5":
        tokenizer_file = t5_tokenizer or _default_t5_tokenizer()
        if tokenizer_file is not None:
            counts = {path: t5_token_count(text, tokenizer_file) for path, text in captions.items()}
            tokenizer = "T5"
        else:
            counts = {path: t5_token_estimate(text) for path, text in captions.items()}
            tokenizer = "T5 (estimate)"
    else:
        counts = {path: clip_token_count(text) for path, text in captions.items()}
        tokenizer = "CLIP"
    limit = model_family.max_caption_tokens
    too_long = tuple(path for path, count in counts.items() if count > limit)
    too_short = tuple(path for path, count in counts.items() if count < model_family.min_caption_tokens)
    return TokenCheck(family=family, max_tokens=limit, counts=counts, too_long=too_long, too_short=too_short,
                      tokenizer=tokenizer, min_tokens=model_family.min_caption_tokens)
