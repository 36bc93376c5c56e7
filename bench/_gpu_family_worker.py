"""Run by the trainer's Python inside an sd-scripts checkout: time one family's denoiser on one device.

Standalone on purpose (the standard library, torch and sd-scripts only), like orchestrator/kohya/_introspect.py.
The denoiser is sd-scripts' own class at its full published size (or, with ``--tiny``, the same architecture
cut to a block or two, for a CPU smoke run), with random bf16 weights and the family's LoRA module wrapped
around it. The text encoders and the autoencoder are not built: a character preset caches their outputs
(``cache_text_encoder_outputs``, ``cache_latents``), so a training step is the denoiser's forward and backward
on random latents and random cached embeddings of the real shapes.

Prints one JSON line: seconds per training step, peak memory, seconds per sample image (the family's sampler
step count of forward passes, doubled where the sampler runs classifier-free guidance).
"""

import argparse
import dataclasses
import importlib
import json
import os
import sys
import time

sys.path.insert(0, os.getcwd())

# family -> (latent side at the preset's resolution, sample steps, forward passes per sample step)
SHAPES = {"sd15": (64, 30, 2), "sdxl": (128, 30, 2), "flux1": (128, 20, 1), "sd35": (128, 28, 2)}
NETWORK_MODULES = {"sd15": "networks.lora", "sdxl": "networks.lora", "flux1": "networks.lora_flux",
                   "sd35": "networks.lora_sd3"}


def build(family, tiny):
    """The denoiser and a function (latents, t) -> output that feeds it cached-embedding-shaped inputs."""
    import torch

    t5_tokens = 8 if tiny else 512  # FLUX.1 dev's t5xxl_max_token_length; SD3 cuts at 256 + 77 CLIP tokens

    if family == "sd15":
        from library.original_unet import UNet2DConditionModel

        model = UNet2DConditionModel(sample_size=64, attention_head_dim=8, cross_attention_dim=768)
        return model, lambda x, t: model(x, t, torch.randn(x.shape[0], 77, 768, device=x.device, dtype=x.dtype)).sample
    if family == "sdxl":
        from library.sdxl_original_unet import SdxlUNet2DConditionModel

        model = SdxlUNet2DConditionModel()
        return model, lambda x, t: model(x, t, torch.randn(x.shape[0], 77, 2048, device=x.device, dtype=x.dtype),
                                         torch.randn(x.shape[0], 2816, device=x.device, dtype=x.dtype))
    if family == "flux1":
        from library import flux_models

        params = flux_models.configs["dev"].params
        if tiny:
            # Two heads of FLUX's own head size (the rotary axes add up to 128): the same blocks, 1/12 as wide.
            params = dataclasses.replace(params, depth=1, depth_single_blocks=1, hidden_size=256, num_heads=2)
        model = flux_models.Flux(params)

        def step(x, t):
            batch, _, height, width = x.shape
            packed = x.reshape(batch, 16, height // 2, 2, width // 2, 2).permute(0, 2, 4, 1, 3, 5)
            packed = packed.reshape(batch, (height // 2) * (width // 2), 64)
            ids = torch.zeros(batch, packed.shape[1], 3, device=x.device)
            txt = torch.randn(batch, t5_tokens, 4096, device=x.device, dtype=x.dtype)
            return model(packed, ids, txt, torch.zeros(batch, t5_tokens, 3, device=x.device), t,
                         torch.randn(batch, 768, device=x.device, dtype=x.dtype),
                         guidance=torch.full((batch,), 1.0, device=x.device, dtype=x.dtype))

        return model, step
    if family == "sd35":
        from library import sd3_models

        params = sd3_models.SD3Params(patch_size=2, depth=2 if tiny else 24, num_patches=147456,
                                      pos_embed_max_size=384, adm_in_channels=2048, qk_norm="rms",
                                      x_block_self_attn_layers=[0] if tiny else list(range(13)),
                                      context_embedder_in_features=4096, context_embedder_out_features=64 * (2 if tiny else 24),
                                      model_type="5-medium")
        model = sd3_models.create_sd3_mmdit(params)
        return model, lambda x, t: model(x, t, torch.randn(x.shape[0], 2048, device=x.device, dtype=x.dtype),
                                         torch.randn(x.shape[0], 8 if tiny else 333, 4096, device=x.device,
                                                     dtype=x.dtype))
    raise SystemExit(f"unknown family {family}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("family", choices=sorted(SHAPES))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--network-dim", type=int, default=16)
    parser.add_argument("--tiny", action="store_true", help="a block or two, 1/8 the latent side: CPU smoke run")
    args = parser.parse_args()

    import torch

    device = torch.device(args.device)
    dtype = torch.bfloat16
    side, sample_steps, passes = SHAPES[args.family]
    side = side // 8 if args.tiny else side
    channels = 4 if args.family in ("sd15", "sdxl") else 16
    started = time.perf_counter()
    with torch.device("meta"):
        model, forward = build(args.family, args.tiny)
    model = model.to_empty(device=device).to(dtype)
    for parameter in model.parameters():  # random weights, small enough to keep activations finite
        torch.nn.init.normal_(parameter, std=0.02)
    model.requires_grad_(False)
    network_module = importlib.import_module(NETWORK_MODULES[args.family])
    network = network_module.create_network(1.0, args.network_dim, float(args.network_dim), None, [], model)
    network.apply_to([], model, apply_text_encoder=False, apply_unet=True)
    network.to(device=device, dtype=dtype)
    trainable = [p for p in network.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    if hasattr(model, "enable_gradient_checkpointing"):
        model.enable_gradient_checkpointing()
    build_seconds = time.perf_counter() - started

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    latents = torch.randn(1, channels, side, side, device=device, dtype=dtype)
    timesteps = torch.full((1,), 500.0 if args.family in ("sd15", "sdxl") else 0.5, device=device, dtype=dtype)
    times = []
    model.train()
    for _ in range(args.steps + 1):  # the first step warms kernels up and is not counted
        sync()
        begin = time.perf_counter()
        loss = forward(latents, timesteps).float().pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync()
        times.append(time.perf_counter() - begin)
    model.eval()
    with torch.no_grad():
        forward(latents, timesteps)
        sync()
        begin = time.perf_counter()
        forward_passes = 3
        for _ in range(forward_passes):
            forward(latents, timesteps)
        sync()
        per_pass = (time.perf_counter() - begin) / forward_passes
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    print(json.dumps({
        "family": args.family, "device": str(device), "tiny": args.tiny, "build_seconds": round(build_seconds, 2),
        "parameters": sum(p.numel() for p in model.parameters()), "lora_parameters": sum(p.numel() for p in trainable),
        "seconds_per_step": round(sorted(times[1:])[len(times[1:]) // 2], 4), "peak_vram_gib": peak and round(peak, 2),
        "seconds_per_sample_image": round(per_pass * sample_steps * passes, 3), "latent_side": side,
    }))


if __name__ == "__main__":
    main()
