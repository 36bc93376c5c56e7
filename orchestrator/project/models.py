"""A project's models (the quickstart's too): the user's weights where given, else random-weight models of the real
architectures built locally (nothing is downloaded). Random ones are listed so the banner can say so.

Built models live in a cache folder (default ``~/.cache/lora-pipeline/quickstart-models``) and are
reused by the next quickstart: the random SD1.5 folder alone is 2.1 GB and ~20 s to build.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.common.errors import UserInputError

#: open_clip architecture used with random weights: ViT-B-32 embeds ~18x faster than ViT-L-14 on a CPU,
#: and random scores mean nothing whatever the size. Real weights default to the evaluation's ViT-L-14.
RANDOM_CLIP_MODEL = "ViT-B-32"
REAL_CLIP_MODEL = "ViT-L-14"
VLM_BACKEND = "qwen2_vl"
RANDOM_VLM = "Qwen2-VL caption model"
RANDOM_DETECTOR = "OWLv2 detector"
RANDOM_SEGMENTER = "SAM segmenter"


@dataclass(frozen=True)
class QuickstartModels:
    base_model: str  # a diffusers folder, a .safetensors file or a hub id, as sd-scripts takes it
    tokenizer_cache_dir: Path  # holds openai_clip-vit-large-patch14 for sd-scripts
    clip_model: str
    clip_weights: str  # a pretrained tag, a checkpoint path, or "random"
    vlm_weights: str  # a saved folder or a hub id
    random: tuple[str, ...] = field(default=())  # which of the above are random-weight stand-ins
    detector: str = "random"  # an OWLv2 folder saved with save_pretrained, or "random" (tiny)
    segmenter: str = "random"  # a SAM folder, or "random" (tiny)

    @property
    def any_random(self) -> bool:
        return bool(self.random)

    @property
    def vlm_is_random(self) -> bool:
        return RANDOM_VLM in self.random


def default_model_cache() -> Path:
    from orchestrator.vision import default_cache_dir

    return default_cache_dir() / "quickstart-models"


def resolve_models(*, cache_dir: Path, base_model: str | None, clip_weights: str | None,
                   clip_model: str | None, vlm_weights: str | None, detector: str | None = None,
                   segmenter: str | None = None) -> QuickstartModels:
    """Use what was given; build a random stand-in for each model that was not."""
    from orchestrator.captions import build_tiny_qwen2_vl
    from orchestrator.toy import build_clip_tokenizer_dir, build_random_sd15, is_random_sd15

    random: list[str] = []
    tokenizers = cache_dir / "tokenizers"
    build_clip_tokenizer_dir(tokenizers)
    if base_model is None:
        base_model = str(build_random_sd15(cache_dir / "sd15-random", tokenizer_cache_dir=tokenizers))
        random.append("SD1.5 base model")
    else:
        _check_local_or_hub(base_model, "--base-model")
        if is_random_sd15(base_model):
            random.append("SD1.5 base model")
    if clip_weights is None:
        clip_weights = "random"
    if clip_weights == "random":
        clip_model = clip_model or RANDOM_CLIP_MODEL
        random.append(f"CLIP {clip_model}")
    else:
        clip_model = clip_model or REAL_CLIP_MODEL
    if vlm_weights is None:
        folder = cache_dir / "tiny-qwen2-vl"
        if not (folder / "config.json").is_file():
            build_tiny_qwen2_vl(folder, kind=VLM_BACKEND)
        vlm_weights = str(folder)
        random.append(RANDOM_VLM)
    # The crop stage's models are built when it runs (tiny, seconds); here only what is random is named.
    detector, segmenter = detector or "random", segmenter or "random"
    random += [name for name, source in ((RANDOM_DETECTOR, detector), (RANDOM_SEGMENTER, segmenter))
               if source == "random"]
    return QuickstartModels(base_model=base_model, tokenizer_cache_dir=tokenizers, clip_model=clip_model,
                            clip_weights=clip_weights, vlm_weights=vlm_weights, random=tuple(random),
                            detector=detector, segmenter=segmenter)


def _check_local_or_hub(value: str, option: str) -> None:
    # "org/name" may be a hub id (sd-scripts fetches it); anything path-like must exist here.
    path = Path(value).expanduser()
    looks_like_path = value.startswith(("/", ".", "~")) or value.count("/") != 1
    if looks_like_path and not path.exists():
        raise UserInputError("model path does not exist", path=path, key=option,
                             hint="pass a diffusers folder, a .safetensors file, or a hub id such as "
                                  "stable-diffusion-v1-5/stable-diffusion-v1-5")
