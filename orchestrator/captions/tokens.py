"""Caption length in CLIP tokens: text past the text encoder's window is silently cut during training.

The CLIP tokenizer (open_clip's ``SimpleTokenizer``, whose BPE file ships with the package: no download)
has a 77-token window including its start and end tokens, so 75 tokens of caption. SD1.5 captions aim
for 40-75 tokens. SDXL runs are usually trained with a longer token length (three windows, 225 tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CLIP_WINDOW = 77  # including the start and end tokens
#: Content-token limits per model family: one window for SD1.5, three for SDXL.
MAX_TOKENS: dict[str, int] = {"sd15": CLIP_WINDOW - 2, "sdxl": 3 * (CLIP_WINDOW - 2)}
SD15_MIN_TOKENS = 40


@dataclass(frozen=True)
class TokenCheck:
    """Token counts of captions and the ones that will be cut (``too_long``) or are thin (``too_short``)."""

    family: str
    max_tokens: int
    counts: dict[Path, int]
    too_long: tuple[Path, ...]
    too_short: tuple[Path, ...]

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


def check_token_lengths(captions: dict[Path, str], *, family: str = "sd15") -> TokenCheck:
    """Count tokens of each caption (keyed by caption file) against ``family``'s limit."""
    if family not in MAX_TOKENS:
        raise ValueError(f"unknown model family {family!r}; known: {sorted(MAX_TOKENS)}")
    limit = MAX_TOKENS[family]
    counts = {path: clip_token_count(text) for path, text in captions.items()}
    too_long = tuple(path for path, count in counts.items() if count > limit)
    too_short = tuple(path for path, count in counts.items() if family == "sd15" and count < SD15_MIN_TOKENS)
    return TokenCheck(family=family, max_tokens=limit, counts=counts, too_long=too_long, too_short=too_short)
