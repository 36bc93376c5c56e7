"""sd-scripts' own image generators for one LoRA checkpoint: ``gen_img.py`` (SD1.5) and
``sdxl_gen_img.py`` (SDXL), as argv lists.

We never generate images ourselves: ``lora-pipeline test-checkpoints`` runs these scripts with
``--network_module networks.lora --network_weights CKPT`` and a prompt file in the same syntax as the
training samples. A prompt's ``--d`` seed overrides ``--seed``, so extra seeds are made by writing one
prompt file per seed with ``--d`` replaced (:func:`prompt_file_with_seed`). Output names are
``im_{YYYYmmddHHMMSS}_{i:03d}_{seed}.png`` with the prompt in the PNG text chunk ``prompt``
(read back by :func:`orchestrator.kohya.outputs.read_generated_image`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.kohya.checkout import GENERATION_SCRIPTS
from orchestrator.kohya.command import TrainerCommand
from orchestrator.kohya.outputs import SamplePrompt

SAMPLERS = ("ddim", "pndm", "lms", "euler", "euler_a", "heun", "dpm_2", "dpm_2_a", "dpmsolver",
            "dpmsolver++", "dpmsingle", "k_lms", "k_euler", "k_euler_a", "k_dpm_2", "k_dpm_2_a")


@dataclass(frozen=True)
class GenerationSettings:
    """Generation options that apply to every prompt (a prompt's own --w/--h/--s/--l/--ss win)."""

    steps: int = 30
    scale: float = 7.0
    sampler: str = "euler_a"
    width: int | None = None
    height: int | None = None
    precision: str | None = "fp16"  # "fp16" | "bf16" | None (fp32, e.g. on CPU)
    attention: str | None = "sdpa"  # "sdpa" | "xformers" | None
    network_mul: float = 1.0
    batch_size: int = 1


def build_generation_command(*, trainer_python: str, sd_scripts: Path, family: str, base_model: str,
                             lora: Path, prompts_file: Path, outdir: Path, seed: int | None = None,
                             images_per_prompt: int = 1, settings: GenerationSettings | None = None,
                             tokenizer_cache_dir: str | None = None,
                             extra_args: Sequence[str] = ()) -> TrainerCommand:
    """The argv (cwd = sd-scripts) that renders ``prompts_file`` with the base model + ``lora``."""
    if family not in GENERATION_SCRIPTS:
        raise ValueError(f"no image generator for model family {family!r}; known: {', '.join(GENERATION_SCRIPTS)}")
    settings = settings or GenerationSettings()
    if settings.sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {settings.sampler!r}; sd-scripts knows {', '.join(SAMPLERS)}")
    argv = [
        trainer_python, str(Path(sd_scripts) / GENERATION_SCRIPTS[family]),
        "--ckpt", str(base_model),
        "--network_module", "networks.lora",
        "--network_weights", str(lora),
        "--network_mul", f"{settings.network_mul:g}",
        "--from_file", str(prompts_file),
        "--outdir", str(outdir),
        "--images_per_prompt", str(images_per_prompt),
        "--batch_size", str(settings.batch_size),
        "--steps", str(settings.steps),
        "--scale", f"{settings.scale:g}",
        "--sampler", settings.sampler,
    ]
    if settings.width:
        argv += ["--W", str(settings.width)]
    if settings.height:
        argv += ["--H", str(settings.height)]
    if seed is not None:
        argv += ["--seed", str(seed)]
    if settings.precision in ("fp16", "bf16"):
        argv.append(f"--{settings.precision}")
    if settings.attention in ("sdpa", "xformers"):
        argv.append(f"--{settings.attention}")
    if tokenizer_cache_dir:
        argv += ["--tokenizer_cache_dir", tokenizer_cache_dir]
    argv += list(extra_args)
    return TrainerCommand(argv=argv, cwd=Path(sd_scripts), env={"PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"})


def format_prompt_line(prompt: SamplePrompt, *, seed: int | None = None) -> str:
    """``prompt`` back in sd-scripts syntax, with ``seed`` (when given) as its ``--d``."""
    parts = [prompt.text]
    if prompt.negative:
        parts.append(f"--n {prompt.negative}")
    if prompt.width:
        parts.append(f"--w {prompt.width}")
    if prompt.height:
        parts.append(f"--h {prompt.height}")
    chosen = seed if seed is not None else prompt.seed
    if chosen is not None:
        parts.append(f"--d {chosen}")
    if prompt.steps:
        parts.append(f"--s {prompt.steps}")
    if prompt.cfg_scale is not None:
        parts.append(f"--l {prompt.cfg_scale:g}")
    if prompt.sampler:
        parts.append(f"--ss {prompt.sampler}")
    return " ".join(parts)


def prompt_file_with_seed(prompts: Sequence[SamplePrompt], seed: int | None) -> str:
    """A whole prompt file's text; with ``seed``, every prompt gets ``--d seed + its index``
    (distinct per prompt, reproducible per seed)."""
    lines = [format_prompt_line(p, seed=None if seed is None else seed + p.index) for p in prompts]
    return "\n".join(lines) + "\n"
