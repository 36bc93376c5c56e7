"""Small safetensors files with the key layout of each family's checkpoints and LoRAs (tiny tensors).

What :mod:`orchestrator.kohya.model_files` reads is the header (names, shapes, metadata), so a few tensors
named as the real files name them are enough to stand for a 24 GB FLUX.1 checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors.numpy import save_file


def _save(path: Path, names: list[str], metadata: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({name: np.zeros((2, 2), dtype=np.float16) for name in names}, str(path), metadata=metadata)
    return path


def flux_checkpoint(path: Path, *, chroma: bool = False) -> Path:
    """BFL layout: 2 double blocks, 1 single block; Chroma's distilled_guidance_layer instead of guidance_in."""
    names = [f"double_blocks.{i}.img_attn.qkv.weight" for i in range(2)] + ["single_blocks.0.linear1.weight",
                                                                           "img_in.weight"]
    names.append("distilled_guidance_layer.in_proj.weight" if chroma else "guidance_in.in_layer.weight")
    return _save(path, names)


def sd3_checkpoint(path: Path) -> Path:
    return _save(path, [f"model.diffusion_model.joint_blocks.{i}.x_block.attn.qkv.weight" for i in range(3)]
                 + ["model.diffusion_model.x_embedder.proj.weight"])


def sdxl_checkpoint(path: Path) -> Path:
    return _save(path, ["model.diffusion_model.input_blocks.0.0.weight", "model.diffusion_model.label_emb.0.0.weight",
                        "conditioner.embedders.0.transformer.text_model.embeddings.position_ids"])


def sd15_checkpoint(path: Path) -> Path:
    return _save(path, ["model.diffusion_model.input_blocks.0.0.weight",
                        "cond_stage_model.transformer.text_model.embeddings.position_ids"])


def lora(path: Path, family: str, *, metadata: dict[str, str] | None = None) -> Path:
    """A LoRA with sd-scripts' key names for ``family`` (networks.lora / lora_flux / lora_sd3)."""
    module = {"sd15": "lora_unet_down_blocks_0_attentions_0_proj_in",
              "sdxl": "lora_unet_input_blocks_4_1_proj_in",
              "flux1": "lora_unet_double_blocks_0_img_attn_qkv",
              "sd35": "lora_unet_joint_blocks_0_x_block_attn_qkv"}[family]
    names = [f"{module}.lora_down.weight", f"{module}.lora_up.weight", f"{module}.alpha"]
    return _save(path, names, metadata)
