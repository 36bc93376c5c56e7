"""The model families sd-scripts trains, as data: one :class:`ModelFamily` entry per family.

Everything that differs between SD1.5, SDXL, FLUX.1, Chroma and SD3.5 lives here and nowhere else: the
training script, the LoRA network module, the model files the script needs (each with its key in
``configs/paths.toml``), the arguments the family always needs, what its sample prompts may say, how its
captions are written and how many tokens its text encoder reads, and how large its LoRA files are.
Every other package asks :func:`family_named`; adding Lumina or Anima is one more entry plus presets.

Where each value comes from (sd-scripts at the pinned commit, ``docs/*.md`` unless said otherwise):
- scripts, network modules and model arguments: ``docs/train_network.md``, ``sdxl_train_network.md``,
  ``flux_train_network.md`` ("Required" model arguments, Chroma without ``--clip_l``), ``sd3_train_network.md``;
- FLUX.1's fixed arguments: ``flux_train_network.md`` section 6 ("recommended": ``--guidance_scale 1.0``,
  ``--timestep_sampling flux_shift``, ``--model_prediction_type raw``); Chroma's: ``--model_type chroma``,
  ``--guidance_scale 0.0``, ``--apply_t5_attn_mask`` ("required"/"needed");
- T5 token limits: ``--t5xxl_max_token_length``'s defaults (FLUX.1 dev 512, SD3 256; ``flux_train_network.py``
  and ``sd3_train_network.md``);
- sample-prompt options: ``library/train_util.py`` ``line_to_prompt_dict`` and what each family's sampler reads
  of it (``--g`` is FLUX's embedded guidance; ``flux_train_utils``/``sd3_train_utils`` ignore ``--ss``);
- LoRA MB per ``network_dim``: SD1.5/SDXL measured; FLUX.1 and SD3.5 computed from the Linear layers that
  ``networks/lora_flux.py`` / ``lora_sd3.py`` wrap (19 double + 38 single blocks at 3072 wide; 24 joint
  blocks at 1536 wide for 3.5 Medium), bf16.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from orchestrator.common.errors import UserInputError

CaptionStyle = Literal["tags", "sentences"]
Objective = Literal["noise", "flow"]  # epsilon/v-prediction diffusion, or rectified-flow matching
TextEncoder = Literal["clip", "t5"]

#: The main model's argument: it names the base model of every family.
BASE_MODEL_ARGUMENT = "pretrained_model_name_or_path"
#: Inside an sd-scripts checkout: T5's tokenizer (the same SentencePiece vocabulary as T5 v1.1 XXL).
T5_TOKENIZER_IN_CHECKOUT = "configs/t5_old/tokenizer.json"
CLIP_WINDOW = 77  # including the start and end tokens


@dataclass(frozen=True)
class ModelInput:
    """One model file a family's training script reads."""

    argument: str  # sd-scripts' argument (``t5xxl``)
    paths_key: str  # its key in configs/paths.toml (``t5xxl``)
    what: str  # for people: "the T5-XXL text encoder (t5xxl_fp16.safetensors)"
    file_only: bool = False  # a .safetensors file; no diffusers folder, no hub id


@dataclass(frozen=True)
class ModelFamily:
    name: str  # our name, stored in presets and run records
    label: str  # for people
    training_script: str
    generation_script: str | None  # sd-scripts' image generator for a LoRA; None: not wired (yet)
    network_module: str
    models: tuple[ModelInput, ...]
    objective: Objective = "noise"
    #: Arguments the script always gets for this family (a preset may not contradict them).
    fixed_arguments: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    #: Letters a sample-prompt line may carry (``--w 512``): what ``line_to_prompt_dict`` reads for it.
    sample_options: tuple[str, ...] = ("w", "h", "d", "s", "l", "n", "ss")
    caption_style: CaptionStyle = "tags"
    text_encoder: TextEncoder = "clip"
    max_caption_tokens: int = CLIP_WINDOW - 2
    min_caption_tokens: int = 0
    lora_mb_per_dim: float = 1.0
    #: Prefixes of its denoiser's LoRA keys that no other family's LoRA has (text-encoder prefixes are shared).
    lora_markers: tuple[str, ...] = ()
    #: ``ss_base_model_version`` / ``modelspec.architecture`` values sd-scripts writes for this family.
    metadata_versions: tuple[str, ...] = ()

    @property
    def base_model(self) -> ModelInput:
        return next(m for m in self.models if m.argument == BASE_MODEL_ARGUMENT)

    def model_input(self, argument: str) -> ModelInput | None:
        return next((m for m in self.models if m.argument == argument), None)


def _base(paths_key: str, what: str, *, file_only: bool = False) -> ModelInput:
    return ModelInput(BASE_MODEL_ARGUMENT, paths_key, what, file_only)


_CLIP_L = ModelInput("clip_l", "clip_l", "the CLIP-L text encoder (clip_l.safetensors)", True)
_CLIP_G = ModelInput("clip_g", "clip_g", "the CLIP-G text encoder (clip_g.safetensors)", True)
_T5XXL = ModelInput("t5xxl", "t5xxl", "the T5-XXL text encoder (t5xxl_fp16.safetensors)", True)
_AE = ModelInput("ae", "ae", "the FLUX.1 autoencoder (ae.safetensors)", True)
_FLOW_SAMPLE_OPTIONS = ("w", "h", "d", "s", "l", "g", "n")

FAMILIES: Mapping[str, ModelFamily] = MappingProxyType({family.name: family for family in (
    ModelFamily(
        name="sd15", label="SD1.5", training_script="train_network.py", generation_script="gen_img.py",
        network_module="networks.lora", models=(_base("base_model_sd15", "the SD1.5 base model"),),
        min_caption_tokens=40, lora_mb_per_dim=0.6, lora_markers=("lora_unet_down_blocks_", "lora_unet_up_blocks_", "lora_unet_mid_block_"),
        metadata_versions=("sd_v1", "stable-diffusion-v1"),
    ),
    ModelFamily(
        name="sdxl", label="SDXL", training_script="sdxl_train_network.py", generation_script="sdxl_gen_img.py",
        network_module="networks.lora", models=(_base("base_model_sdxl", "the SDXL base model"),),
        max_caption_tokens=3 * (CLIP_WINDOW - 2), lora_mb_per_dim=1.8,
        lora_markers=("lora_unet_input_blocks_", "lora_unet_output_blocks_", "lora_unet_middle_block_"),
        metadata_versions=("sdxl_base_v1-0", "stable-diffusion-xl-v1-base"),
    ),
    ModelFamily(
        name="flux1", label="FLUX.1", training_script="flux_train_network.py", generation_script=None,
        network_module="networks.lora_flux", objective="flow",
        models=(_base("base_model_flux1", "the FLUX.1 dev transformer (flux1-dev.safetensors)", file_only=True),
                _CLIP_L, _T5XXL, _AE),
        fixed_arguments=MappingProxyType({"model_type": "flux"}),
        sample_options=_FLOW_SAMPLE_OPTIONS, caption_style="sentences", text_encoder="t5",
        max_caption_tokens=512, lora_mb_per_dim=9.2, lora_markers=("lora_unet_double_blocks_",
                                                                  "lora_unet_single_blocks_"),
        metadata_versions=("flux1", "flux-1-dev", "flux-1-schnell", "flux-1"),
    ),
    ModelFamily(
        name="chroma", label="Chroma", training_script="flux_train_network.py", generation_script=None,
        network_module="networks.lora_flux", objective="flow",
        models=(_base("base_model_chroma", "the Chroma transformer (Chroma.safetensors)", file_only=True),
                _T5XXL, _AE),
        fixed_arguments=MappingProxyType({"model_type": "chroma", "guidance_scale": 0.0,
                                          "apply_t5_attn_mask": True}),
        sample_options=_FLOW_SAMPLE_OPTIONS, caption_style="sentences", text_encoder="t5",
        max_caption_tokens=512, lora_mb_per_dim=9.2, lora_markers=("lora_unet_double_blocks_",
                                                                  "lora_unet_single_blocks_"),
        metadata_versions=("chroma",),
    ),
    ModelFamily(
        name="sd35", label="SD3.5", training_script="sd3_train_network.py", generation_script=None,
        network_module="networks.lora_sd3", objective="flow",
        models=(_base("base_model_sd35", "the SD3.5 Medium model (sd3.5_medium.safetensors)", file_only=True),
                _CLIP_L, _CLIP_G, _T5XXL),
        sample_options=("w", "h", "d", "s", "l", "n"), caption_style="sentences", text_encoder="t5",
        max_caption_tokens=256, lora_mb_per_dim=3.4, lora_markers=("lora_unet_joint_blocks_",),
        metadata_versions=("sd3", "stable-diffusion-3"),
    ),
)})
#: Every training script of a family, once each (FLUX.1 and Chroma share one).
SCRIPTS: tuple[str, ...] = tuple(dict.fromkeys(f.training_script for f in FAMILIES.values()))


def family_named(name: object, *, path: Path | str | None = None, key: str = "preset.family") -> ModelFamily:
    """The family called ``name``; a :class:`UserInputError` naming ``path`` and ``key`` otherwise."""
    if isinstance(name, str) and name in FAMILIES:
        return FAMILIES[name]
    raise UserInputError(f"family must be one of {list(FAMILIES)}, got {name!r}", path=path, key=key)


def family_of_script(script: str) -> ModelFamily | None:
    """The first family trained by ``script`` (a file name or a path ending in it)."""
    name = Path(str(script)).name
    return next((f for f in FAMILIES.values() if f.training_script == name), None)


def family_of_argv(argv: list[str] | tuple[str, ...]) -> ModelFamily | None:
    """The family of a recorded trainer command line: its script, then ``--model_type``."""
    family = next((f for f in (family_of_script(str(a)) for a in argv) if f is not None), None)
    if family is None:
        return None
    items = [str(a) for a in argv]
    for index, item in enumerate(items):
        value = item.split("=", 1)[1] if item.startswith("--model_type=") else \
            items[index + 1] if item == "--model_type" and index + 1 < len(items) else None
        if value is not None:
            return next((f for f in FAMILIES.values() if f.training_script == family.training_script
                         and f.fixed_arguments.get("model_type") == value), family)
    return family


def t5_tokenizer_file(sd_scripts: Path) -> Path | None:
    """T5's tokenizer file inside an sd-scripts checkout, when it is there."""
    candidate = Path(sd_scripts) / T5_TOKENIZER_IN_CHECKOUT
    return candidate if candidate.is_file() else None
