"""The CLIP tokenizer folder built from open_clip's BPE file gives real CLIP's ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.toy import TOKENIZER_FOLDER_NAME, build_clip_tokenizer_dir

pytest.importorskip("open_clip")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_clip_tokenizer_dir(tmp_path_factory.mktemp("tokenizers"))


def test_folder_is_named_as_sd_scripts_looks_for_it(tokenizer_dir: Path) -> None:
    assert tokenizer_dir.name == TOKENIZER_FOLDER_NAME == "openai_clip-vit-large-patch14"


def test_vocabulary_has_clips_49408_entries_with_special_tokens_last(tokenizer_dir: Path) -> None:
    vocab = json.loads((tokenizer_dir / "vocab.json").read_text(encoding="utf-8"))
    assert len(vocab) == 49408
    assert vocab["<|startoftext|>"] == 49406 and vocab["<|endoftext|>"] == 49407
    merges = (tokenizer_dir / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert merges[0] == "#version: 0.2" and len(merges) == 1 + 48894


def test_ids_match_real_clip(tokenizer_dir: Path) -> None:
    tokenizer = transformers.CLIPTokenizer.from_pretrained(tokenizer_dir)
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert tokenizer.model_max_length == 77


def test_ids_match_open_clips_own_tokenizer_on_a_caption(tokenizer_dir: Path) -> None:
    import open_clip

    caption = "Luca Paguro, a boy with curly brown hair, 3D animation — smiling!"
    ours = transformers.CLIPTokenizer.from_pretrained(tokenizer_dir)(caption).input_ids
    theirs = [int(i) for i in open_clip.tokenize([caption])[0] if int(i) != 0]
    assert ours == theirs


def test_an_existing_folder_is_reused_not_rebuilt(tokenizer_dir: Path) -> None:
    before = (tokenizer_dir / "vocab.json").stat().st_mtime_ns
    assert build_clip_tokenizer_dir(tokenizer_dir.parent) == tokenizer_dir
    assert (tokenizer_dir / "vocab.json").stat().st_mtime_ns == before
