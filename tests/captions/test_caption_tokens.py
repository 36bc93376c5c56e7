"""CLIP token counting: open_clip's bundled BPE, the 75-token window, SD1.5's lower target."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.captions.tokens import MAX_TOKENS, check_token_lengths, clip_token_count


def test_counts_match_open_clip_tokenize():
    import open_clip

    text = "a 3d animated character, pixar film quality, subsurface scattering"
    encoded = open_clip.tokenize([text])[0]
    assert clip_token_count(text) == int((encoded != 0).sum()) - 2  # minus start and end tokens


def test_limits_per_family():
    short, mid, long = Path("short.txt"), Path("mid.txt"), Path("long.txt")
    captions = {short: "a boy", mid: " ".join(["water"] * 60), long: " ".join(["water"] * 100)}
    sd15 = check_token_lengths(captions, family="sd15")
    assert sd15.max_tokens == 75 and sd15.too_long == (long,) and sd15.too_short == (short,)
    assert (sd15.shortest, sd15.longest) == (2, 100)
    sdxl = check_token_lengths(captions, family="sdxl")
    assert sdxl.max_tokens == MAX_TOKENS["sdxl"] == 225 and sdxl.too_long == () and sdxl.too_short == ()
    with pytest.raises(ValueError, match="unknown model family"):
        check_token_lengths(captions, family="lumina")
