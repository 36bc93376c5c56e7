"""A tiny random-weight Qwen2-VL / Qwen2.5-VL, built offline, for tests and the quickstart.

No weights can be downloaded on machines without network, yet the caption stage must run end to end.
This module builds the whole model family in code: a byte-level BPE tokenizer (``tokenizers``) carrying
Qwen's special tokens and chat template, a processor with a small image budget, and a model a few hundred
kilobytes big from a config. It is saved with ``save_pretrained`` and then loaded through the same
``from_pretrained`` path as real weights (:func:`orchestrator.captions.backends.load_qwen_backend`).
Its answers are nonsense words; the pipeline around them is real.

>>> from orchestrator.captions.tiny_model import build_tiny_qwen2_vl
>>> folder = build_tiny_qwen2_vl("/tmp/tiny-qwen2-vl")        # doctest: +SKIP
>>> # lora-pipeline caption frames/ --profile configs/characters/luca.yaml --weights /tmp/tiny-qwen2-vl
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.captions.scene import SCENE_FIELDS

# Qwen's special tokens, by name; the ids differ from the real vocabulary but the roles are the same.
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)

# Qwen2-VL's chat template (images and text; video left out because captions never use it).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Enough caption-like text that the BPE merges form real words, so random output looks word-ish.
_CORPUS = [
    " ".join(f"{field}: standing smiling running looking down near water village street warm sunset "
             "light soft shadow wet shirt sand" for field in SCENE_FIELDS),
    "a 3d animated character, pixar film quality, smooth shading, subsurface scattering",
]

TINY_PATCH_PIXELS = 28 * 28  # one merged visual token covers 28x28 pixels
TINY_MAX_PIXELS = 4 * TINY_PATCH_PIXELS  # at most 4 visual tokens per image: fast on CPU


def build_tiny_qwen2_vl(out_dir: str | Path, *, kind: str = "qwen2_vl", seed: int = 0) -> Path:
    """Save a tiny random ``kind`` model (``qwen2_vl`` or ``qwen2_5_vl``) with its processor to ``out_dir``.

    Returns ``out_dir``; loading it with ``load_qwen_backend(kind, str(out_dir))`` takes a few seconds
    and one batched ``generate`` of 32 new tokens well under a second per image on a CPU core.
    """
    import torch
    import transformers

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _build_tokenizer()
    token_ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    image_processor = transformers.Qwen2VLImageProcessor(min_pixels=TINY_PATCH_PIXELS,
                                                         max_pixels=TINY_MAX_PIXELS)
    video_processor = transformers.Qwen2VLVideoProcessor()
    processor_class = {"qwen2_vl": transformers.Qwen2VLProcessor,
                       "qwen2_5_vl": transformers.Qwen2_5_VLProcessor}[kind]
    processor = processor_class(image_processor=image_processor, tokenizer=tokenizer,
                                video_processor=video_processor, chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(out_dir)

    text_config = {
        "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 1024,
        # M-RoPE splits the rotary half-dimension (4 = head_dim 8 / 2) across time, height and width.
        "rope_parameters": {"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 10000.0},
        "bos_token_id": token_ids["<|endoftext|>"], "eos_token_id": token_ids["<|im_end|>"],
        "pad_token_id": token_ids["<|endoftext|>"],
        # Larger than the default 0.02 so that answers depend on the image (tests compare them).
        "initializer_range": 0.5,
    }
    vision_common = {"initializer_range": 0.5, "depth": 1, "num_heads": 2, "patch_size": 14, "spatial_merge_size": 2,
                     "temporal_patch_size": 2}
    if kind == "qwen2_vl":
        vision_config = {**vision_common, "embed_dim": 32, "hidden_size": 32, "mlp_ratio": 2}
        config_class, model_class = transformers.Qwen2VLConfig, transformers.Qwen2VLForConditionalGeneration
    else:
        vision_config = {**vision_common, "hidden_size": 32, "out_hidden_size": 32, "intermediate_size": 64,
                         "window_size": 56, "fullatt_block_indexes": [0]}
        config_class = transformers.Qwen2_5_VLConfig
        model_class = transformers.Qwen2_5_VLForConditionalGeneration
    config = config_class(
        text_config=text_config, vision_config=vision_config,
        image_token_id=token_ids["<|image_pad|>"], video_token_id=token_ids["<|video_pad|>"],
        vision_start_token_id=token_ids["<|vision_start|>"], vision_end_token_id=token_ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model_class(config).save_pretrained(out_dir)
    return out_dir


def _build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=384, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(_CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>", padding_side="left")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
