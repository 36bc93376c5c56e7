"""The CLIP ViT-L/14 tokenizer folder, built offline from the BPE file that open_clip ships.

sd-scripts looks for ``{tokenizer_cache_dir}/openai_clip-vit-large-patch14`` before it asks the hub.
Real CLIP's vocabulary is derived from its BPE merges by a fixed rule (256 byte symbols, the same with
the end-of-word mark, one token per merge, then the two special tokens), so the folder built here gives
the same ids as the hub's: "a photo of a cat" -> 49406 320 1125 539 320 2368 49407.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from orchestrator.common.atomic import atomic_folder, recover_interrupted_swap

TOKENIZER_FOLDER_NAME = "openai_clip-vit-large-patch14"
# SDXL's second tokenizer: the same BPE and ids as ViT-L's, padded with "!" (id 0) like open_clip.
BIGG_TOKENIZER_FOLDER_NAME = "laion_CLIP-ViT-bigG-14-laion2B-39B-b160k"
BIGG_PAD_TOKEN = "!"
VOCAB_SIZE = 49408
_MERGE_COUNT = 49152 - 256 - 2  # as in CLIP's own tokenizer: the first 48,894 merges of the file
_START, _END = "<|startoftext|>", "<|endoftext|>"

_TOKENIZER_CONFIG = {
    "tokenizer_class": "CLIPTokenizer",
    "model_max_length": 77,
    "do_lower_case": True,
    "add_prefix_space": False,
    "errors": "replace",
    "bos_token": _START,
    "eos_token": _END,
    "unk_token": _END,
    "pad_token": _END,
}
_SPECIAL_TOKENS = {"bos_token": _START, "eos_token": _END, "unk_token": _END, "pad_token": _END}


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable characters (the first 256 vocabulary symbols)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(code) for code in codes), strict=True))


def open_clip_bpe_path() -> Path:
    """The ``bpe_simple_vocab_16e6.txt.gz`` inside the installed open_clip package."""
    import open_clip  # local import: only this builder needs open_clip

    path = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    if not path.is_file():
        raise FileNotFoundError(f"open_clip is installed but ships no BPE file at {path}")
    return path


def clip_vocab_and_merges(bpe_path: Path) -> tuple[dict[str, int], list[str]]:
    """The token -> id map and the merge lines, exactly as CLIP derives them from its BPE file."""
    lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")
    merges = lines[1 : _MERGE_COUNT + 1]
    byte_symbols = list(_bytes_to_unicode().values())
    tokens = byte_symbols + [symbol + "</w>" for symbol in byte_symbols]
    tokens += ["".join(merge.split()) for merge in merges]
    tokens += [_START, _END]
    if len(tokens) != VOCAB_SIZE:
        raise ValueError(f"{bpe_path} gives {len(tokens)} tokens, CLIP has {VOCAB_SIZE}")
    return {token: index for index, token in enumerate(tokens)}, merges


def build_clip_tokenizer_dir(
    cache_dir: str | Path,
    *,
    bpe_path: Path | None = None,
    folder_name: str = TOKENIZER_FOLDER_NAME,
    pad_token: str = _END,
) -> Path:
    """Write ``cache_dir/<folder_name>`` (vocab.json, merges.txt, configs); reuse it if complete.

    ``cache_dir`` is what sd-scripts' ``tokenizer_cache_dir`` should point at. Returns the tokenizer folder.
    The files are written by hand, not by ``save_pretrained``: transformers 5 saves only tokenizer.json,
    which the trainer's pinned transformers 4 cannot load. SDXL's bigG tokenizer is
    ``folder_name=BIGG_TOKENIZER_FOLDER_NAME, pad_token=BIGG_PAD_TOKEN``.
    """
    target = Path(cache_dir) / folder_name
    recover_interrupted_swap(target)
    if (target / "vocab.json").is_file() and (target / "tokenizer_config.json").is_file():
        return target
    vocab, merges = clip_vocab_and_merges(bpe_path or open_clip_bpe_path())
    with atomic_folder(target) as staging:
        (staging / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        (staging / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
        config = {**_TOKENIZER_CONFIG, "pad_token": pad_token}
        special = {**_SPECIAL_TOKENS, "pad_token": pad_token}
        (staging / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        (staging / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")
    return target
