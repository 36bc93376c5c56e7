"""A random-weight model with the exact SDXL-base architecture, built offline.

Like :mod:`orchestrator.toy.random_sd15`: sd-scripts converts the UNet into its own fixed SDXL network, so
only the full-size architecture loads. The configs are SDXL-base 1.0's published ones, written out here.
The result is a diffusers folder (what sd-scripts loads through ``StableDiffusionXLPipeline``) stored in
float16, about 6.9 GB. It is built one component at a time in float16, each saved and freed before the
next, so the peak memory is about the UNet alone (~5 GB), not the whole fp32 pipeline (~14 GB).
Its images are noise: it exists to prove that the chain runs, never to judge a LoRA.

Tokenizers: sd-scripts loads ``tokenizer_2`` from the model folder and both tokenizers from its
``tokenizer_cache_dir``; all are written as vocab.json + merges.txt, which the trainer's transformers reads.
"""

from __future__ import annotations

import gc
import json
import shutil
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_folder
from orchestrator.toy.random_sd15 import SD15_VAE_CONFIG
from orchestrator.vision.clip_tokenizer import (
    BIGG_PAD_TOKEN,
    BIGG_TOKENIZER_FOLDER_NAME,
    TOKENIZER_FOLDER_NAME,
    build_clip_tokenizer_dir,
)

# Written last: a folder without it is an interrupted build and is rebuilt.
_COMPLETE_MARKER = "lora_pipeline_random_sdxl.json"

SDXL_UNET_CONFIG: dict[str, object] = {
    "sample_size": 128,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [320, 640, 1280],
    "layers_per_block": 2,
    "transformer_layers_per_block": [1, 2, 10],
    "attention_head_dim": [5, 10, 20],
    "cross_attention_dim": 2048,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,
    "use_linear_projection": True,
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "act_fn": "silu",
    "center_input_sample": False,
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "mid_block_scale_factor": 1,
}
# SDXL's VAE is SD1.5's architecture with its own latent scale.
SDXL_VAE_CONFIG: dict[str, object] = {**SD15_VAE_CONFIG, "sample_size": 1024, "scaling_factor": 0.13025}
# SDXL-base's text encoders carry the legacy special ids (bos 0, eos 2, pad 1) in their configs.
SDXL_TEXT_ENCODER_CONFIG: dict[str, object] = {
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 768,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
}
SDXL_TEXT_ENCODER_2_CONFIG: dict[str, object] = {
    "vocab_size": 49408,
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_hidden_layers": 32,
    "num_attention_heads": 20,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "projection_dim": 1280,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
}
SDXL_SCHEDULER_CONFIG: dict[str, object] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "interpolation_type": "linear",
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "use_karras_sigmas": False,
}
_MODEL_INDEX: dict[str, object] = {
    "_class_name": "StableDiffusionXLPipeline",
    "force_zeros_for_empty_prompt": True,
    "scheduler": ["diffusers", "EulerDiscreteScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "tokenizer_2": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


def is_random_sdxl(model_dir: str | Path) -> bool:
    """True for a complete folder written by :func:`build_random_sdxl`."""
    return (Path(model_dir) / _COMPLETE_MARKER).is_file()


def build_sdxl_tokenizer_dirs(cache_dir: str | Path) -> tuple[Path, Path]:
    """Both SDXL tokenizer folders under ``cache_dir`` (sd-scripts' ``tokenizer_cache_dir``): ViT-L, bigG."""
    return (
        build_clip_tokenizer_dir(cache_dir, folder_name=TOKENIZER_FOLDER_NAME),
        build_clip_tokenizer_dir(cache_dir, folder_name=BIGG_TOKENIZER_FOLDER_NAME, pad_token=BIGG_PAD_TOKEN),
    )


@contextmanager
def _float16_construction() -> Any:
    # Parameters are created in fp16 directly: no fp32 copy of the 2.6 B-parameter UNet ever exists.
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float16)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _save_component(staging: Path, name: str, build: Callable[[], Any]) -> None:
    with _float16_construction():
        component = build()
    component.save_pretrained(staging / name, safe_serialization=True)
    del component
    gc.collect()


def build_random_sdxl(out_dir: str | Path, *, seed: int = 0, tokenizer_cache_dir: str | Path | None = None) -> Path:
    """Build (or reuse) a random-weight SDXL-base diffusers folder at ``out_dir``; return ``out_dir``.

    ``tokenizer_cache_dir`` (default: beside ``out_dir``) receives both tokenizer folders sd-scripts looks
    for; they are copied into the model as ``tokenizer/`` and ``tokenizer_2/``.
    """
    import diffusers
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    out_dir = Path(out_dir)
    if is_random_sdxl(out_dir):
        return out_dir
    vit_l, big_g = build_sdxl_tokenizer_dirs(tokenizer_cache_dir or out_dir.parent / "tokenizers")
    torch.manual_seed(seed)
    with atomic_folder(out_dir) as staging:
        _save_component(staging, "unet", lambda: UNet2DConditionModel(**SDXL_UNET_CONFIG))
        _save_component(staging, "vae", lambda: AutoencoderKL(**SDXL_VAE_CONFIG))
        _save_component(staging, "text_encoder", lambda: CLIPTextModel(CLIPTextConfig(**SDXL_TEXT_ENCODER_CONFIG)))
        _save_component(staging, "text_encoder_2", lambda: CLIPTextModelWithProjection(
            CLIPTextConfig(**SDXL_TEXT_ENCODER_2_CONFIG)))
        EulerDiscreteScheduler(**SDXL_SCHEDULER_CONFIG).save_pretrained(staging / "scheduler")
        shutil.copytree(vit_l, staging / "tokenizer")
        shutil.copytree(big_g, staging / "tokenizer_2")
        index = {**_MODEL_INDEX, "_diffusers_version": diffusers.__version__}
        (staging / "model_index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
        marker = {"architecture": "sdxl", "weights": "random", "seed": seed, "dtype": "float16"}
        (staging / _COMPLETE_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return out_dir
