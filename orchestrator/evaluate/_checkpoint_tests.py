"""``test-checkpoints``: plan sd-scripts generation jobs (one per checkpoint and seed) and run them.

The plan is pure (argv lists, prompt-file texts, output folders); running is a plain sequential
subprocess per job, one GPU job at a time, each with its own log. Output layout::

    RUN_DIR/checkpoint_samples/e{epoch:06d}/seed{SEED|own}/im_*.png   (+ generate.log)
    RUN_DIR/checkpoint_samples/prompts_seed{SEED|own}.txt

``evaluate`` scores these images for checkpoints that have no training-time samples
(``orchestrator.evaluate._run_facts.find_generated_samples``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.common.atomic import atomic_write_text
from orchestrator.common.errors import UserInputError
from orchestrator.evaluate._run_facts import GENERATED_FOLDER, gather_run_facts
from orchestrator.kohya.command import TrainerCommand
from orchestrator.kohya.families import FAMILIES, family_named
from orchestrator.kohya.generate import GenerationSettings, build_generation_command, prompt_file_with_seed
from orchestrator.kohya.model_files import require_lora_family, require_model_family


@dataclass(frozen=True)
class GenerationJob:
    epoch: int
    seed: int | None
    checkpoint: Path
    prompts_file: Path
    prompts_text: str
    outdir: Path
    command: TrainerCommand


def plan_checkpoint_tests(run_dir: str | Path, *, base_model: str, trainer_python: str, sd_scripts: Path,
                          prompts_file: str | Path | None = None, seeds: Sequence[int] | None = None,
                          epochs: Sequence[int] | None = None, family: str | None = None,
                          settings: GenerationSettings | None = None,
                          tokenizer_cache_dir: str | None = None) -> list[GenerationJob]:
    run_dir = Path(run_dir)
    facts = gather_run_facts(run_dir, prompts_file=prompts_file)
    if not facts.prompts:
        raise UserInputError("no prompts: pass --prompts FILE (the run config names no sample_prompts)", path=run_dir)
    family = family or facts.record.family
    if family is None:
        raise UserInputError("cannot tell the model family (no run.json argv)", path=run_dir,
                             hint=f"pass --family ({', '.join(FAMILIES)})")
    model_family = family_named(family, path=run_dir, key="--family")
    checkpoints = facts.checkpoints_by_epoch
    if not checkpoints:
        raise UserInputError("no checkpoints in this run folder", path=run_dir)
    chosen = sorted(checkpoints) if not epochs else sorted(set(epochs))
    missing = [e for e in chosen if e not in checkpoints]
    if missing:
        raise UserInputError(f"no checkpoint for epoch(s) {missing}; checkpoints exist for {sorted(checkpoints)}",
                             path=run_dir)
    for epoch in chosen:  # another family's LoRA would load with a warning and change nothing
        require_lora_family(checkpoints[epoch].path, model_family)
    if model_family.generation_script is None:
        raise UserInputError(f"no sd-scripts image generator is wired for {model_family.label} LoRAs yet",
                             path=run_dir, key="--family",
                             hint="score the run's own sample images with `lora-pipeline evaluate`")
    if Path(base_model).exists():
        require_model_family(base_model, model_family, key="--base-model")
    root = run_dir / GENERATED_FOLDER
    jobs = []
    for seed in (list(seeds) if seeds else [None]):
        label = f"seed{seed}" if seed is not None else "seed_own"
        text = prompt_file_with_seed(facts.prompts, seed)
        prompt_path = root / f"prompts_{label}.txt"
        for epoch in chosen:
            outdir = root / f"e{epoch:06d}" / label
            command = build_generation_command(
                trainer_python=trainer_python, sd_scripts=sd_scripts, family=family, base_model=base_model,
                lora=checkpoints[epoch].path.resolve(), prompts_file=prompt_path.resolve(), outdir=outdir.resolve(),
                settings=settings, tokenizer_cache_dir=tokenizer_cache_dir)
            jobs.append(GenerationJob(epoch, seed, checkpoints[epoch].path, prompt_path, text, outdir, command))
    return jobs


def run_jobs(jobs: Sequence[GenerationJob], *,
             report: Callable[[str], object] = print) -> list[tuple[GenerationJob, int]]:
    """Run each job in turn (stdout+stderr to ``outdir/generate.log``); returns (job, exit code)."""
    outcomes = []
    for job in jobs:
        job.outdir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(job.prompts_file, job.prompts_text)
        log_path = job.outdir / "generate.log"
        report(f"epoch {job.epoch} seed {job.seed if job.seed is not None else 'own'}: {log_path}")
        with open(log_path, "w", encoding="utf-8") as log:
            code = subprocess.run(job.command.argv, cwd=job.command.cwd, env={**os.environ, **job.command.env},
                                  stdout=log, stderr=subprocess.STDOUT, check=False).returncode
        outcomes.append((job, code))
        if code != 0:
            report(f"  failed with exit code {code}; last lines of {log_path}:")
            for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-10:]:
                report(f"  | {line}")
    return outcomes

