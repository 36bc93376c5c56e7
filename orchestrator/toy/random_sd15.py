"""A random-weight model with the exact Stable Diffusion 1.5 architecture, built offline.

sd-scripts converts the UNet into its own fixed SD1.5 network, so a smaller toy model would not load:
only the full-size architecture works. The configs below are SD1.5's published ones, written out here so
nothing is downloaded. The result is a diffusers folder (what sd-scripts loads through
``StableDiffusionPipeline.from_pretrained``), stored in float16 (about 2.1 GB) to halve disk and load time.
Its images are noise: it exists to prove that the chain runs, never to judge a LoRA.
"""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.common.atomic import atomic_folder, recover_interrupted_swap
from orchestrator.vision.clip_tokenizer import build_clip_tokenizer_dir

# Written last: a folder without it is an interrupted build and is rebuilt.
_COMPLETE_MARKER = "lora_pipeline_random_sd15.json"

SD15_UNET_CONFIG: dict[str, object] = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "act_fn": "silu",
    "center_input_sample": False,
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "mid_block_scale_factor": 1,
}
SD15_VAE_CONFIG: dict[str, object] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "act_fn": "silu",
    "sample_size": 512,
    "scaling_factor": 0.18215,
}
SD15_TEXT_ENCODER_CONFIG: dict[str, object] = {
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 768,
    "bos_token_id": 49406,
    "eos_token_id": 49407,
    "pad_token_id": 1,
}
SD15_SCHEDULER_CONFIG: dict[str, object] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "skip_prk_steps": True,
    "set_alpha_to_one": False,
    "steps_offset": 1,
}


def is_random_sd15(model_dir: str | Path) -> bool:
    """True for a complete folder written by :func:`build_random_sd15`."""
    recover_interrupted_swap(model_dir)
    return (Path(model_dir) / _COMPLETE_MARKER).is_file()


def build_random_sd15(out_dir: str | Path, *, seed: int = 0, tokenizer_cache_dir: str | Path | None = None) -> Path:
    """Build (or reuse) a random-weight SD1.5 diffusers folder at ``out_dir``; return ``out_dir``.

    Takes about 30 s and 2.1 GB of disk on a 2-core CPU. ``tokenizer_cache_dir`` is where the CLIP
    tokenizer folder is built (default: beside ``out_dir``) before it is copied into the model.
    """
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    out_dir = Path(out_dir)
    if is_random_sd15(out_dir):
        return out_dir
    tokenizer_dir = build_clip_tokenizer_dir(tokenizer_cache_dir or out_dir.parent / "tokenizers")
    torch.manual_seed(seed)
    pipeline = StableDiffusionPipeline(
        vae=AutoencoderKL(**SD15_VAE_CONFIG),
        text_encoder=CLIPTextModel(CLIPTextConfig(**SD15_TEXT_ENCODER_CONFIG)),
        tokenizer=CLIPTokenizer.from_pretrained(tokenizer_dir),
        unet=UNet2DConditionModel(**SD15_UNET_CONFIG),
        scheduler=PNDMScheduler(**SD15_SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    for component in (pipeline.unet, pipeline.vae, pipeline.text_encoder):
        # Module.half, not ModelMixin.to: the latter warns about fp32 modules that SD1.5 does not have.
        torch.nn.Module.half(component)
    with atomic_folder(out_dir) as staging:
        pipeline.save_pretrained(staging, safe_serialization=True)
        marker = {"architecture": "sd15", "weights": "random", "seed": seed, "dtype": "float16"}
        (staging / _COMPLETE_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return out_dir
