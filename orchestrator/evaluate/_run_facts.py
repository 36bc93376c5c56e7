"""What evaluation reads from a run folder: the run record, samples, checkpoints, prompts, training images.

The run record (``RUN_DIR/run.json``, written by the runner) is read defensively: every field is
optional, a missing or malformed file leaves the facts empty and adds a problem line, because an
evaluation of samples must not fail over a damaged log summary.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.common.record_paths import on_disk
from orchestrator.kohya.check import family_of_command
from orchestrator.kohya.outputs import (
    Checkpoint,
    SampleImage,
    SamplePrompt,
    find_checkpoints,
    find_samples,
    read_generated_image,
    read_prompt_file,
    read_run_config,
)

#: Where ``test-checkpoints`` writes its images: ``{GENERATED_FOLDER}/e{epoch:06d}/seed{SEED|_own}/``.
GENERATED_FOLDER = "checkpoint_samples"


@dataclass(frozen=True)
class LossPoint:
    step: int
    epoch: int | None
    loss: float  # may be NaN: that is a finding, not a parse error


@dataclass
class RunRecordFacts:
    status: str | None = None
    output_name: str | None = None
    family: str | None = None  # "sd15" | "sdxl" when the record's argv names the script
    total_epochs: int | None = None
    losses: list[LossPoint] = field(default_factory=list)
    validation_losses: list[tuple[int, float]] = field(default_factory=list)
    epoch_seconds: dict[int, float] = field(default_factory=dict)
    checkpoints: dict[int, Path] = field(default_factory=dict)
    failure: str | None = None


@dataclass
class RunFacts:
    run_dir: Path
    output_name: str | None
    record: RunRecordFacts
    samples_by_epoch: dict[int, list[SampleImage]]
    checkpoints_by_epoch: dict[int, Checkpoint]
    prompts: list[SamplePrompt]
    prompts_file: Path | None
    training_image_dirs: tuple[Path, ...]
    problems: list[str] = field(default_factory=list)
    # sd-scripts' validation split holds these out of training: not training images for the copying check.
    held_out_images: tuple[Path, ...] = ()
    base_samples: list[SampleImage] = field(default_factory=list)  # the base model's (sample_at_first)


def read_run_record(run_dir: Path) -> tuple[RunRecordFacts, list[str]]:
    """The parts of ``run.json`` evaluation uses, and problems met while reading it."""
    path = run_dir / "run.json"
    if not path.is_file():
        return RunRecordFacts(), []
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as error:
        return RunRecordFacts(), [f"{path}: unreadable run record ({error}); loss curve omitted"]
    if not isinstance(data, dict):
        return RunRecordFacts(), [f"{path}: run record is not a JSON object; ignored"]
    facts = RunRecordFacts(status=_str(data.get("status")), output_name=_str(data.get("output_name")))
    argv = data.get("argv") or []
    if isinstance(argv, list) and argv:
        facts.family = family_of_command([str(a) for a in argv])
    summary = data.get("summary") or {}
    if isinstance(summary, dict) and isinstance(summary.get("epochs"), int):
        facts.total_epochs = summary["epochs"]
    for row in _rows(data.get("losses")):
        step, loss = _int(row.get("step")), _float(row.get("avr_loss"))
        if step is not None and loss is not None:
            facts.losses.append(LossPoint(step, _int(row.get("epoch")), loss))
    for row in _rows(data.get("validation_losses")):
        epoch, loss = _int(row.get("epoch")), _float(row.get("loss"))
        if epoch is not None and loss is not None:
            facts.validation_losses.append((epoch, loss))
    for row in _rows(data.get("epochs")):
        epoch, seconds = _int(row.get("epoch")), _float(row.get("wall_seconds"))
        if epoch is not None and seconds is not None:
            facts.epoch_seconds[epoch] = seconds
    problems = []
    checkpoints = data.get("checkpoints") or {}
    recorded_dir = data.get("run_dir") if isinstance(data.get("run_dir"), str) else None
    if isinstance(checkpoints, dict):
        for key, value in checkpoints.items():
            if (epoch := _int(key)) is None or not isinstance(value, str) or not value:
                continue
            # The record's path is checked against this folder's disk, never trusted as written.
            here = on_disk(value, folder=run_dir, recorded_folder=recorded_dir)
            if here is None:
                problems.append(f"{path}: the checkpoint of epoch {epoch} it names, {value}, lies outside this "
                                "run folder (a copied or moved run?); not used")
            else:
                facts.checkpoints[epoch] = here
    failure = data.get("failure")
    if isinstance(failure, dict):
        facts.failure = f"{failure.get('cause', 'failure')}: {failure.get('message', '')}".strip()
    return facts, problems


def gather_run_facts(run_dir: str | Path, *, prompts_file: str | Path | None = None,
                     train_images: str | Path | None = None) -> RunFacts:
    """Everything in ``run_dir`` that evaluation needs, with a problem line for each inconsistency."""
    run_dir = Path(run_dir)
    record, problems = read_run_record(run_dir)
    config = read_run_config(run_dir)
    output_name = config.output_name or record.output_name
    samples, unparsed = find_samples(run_dir, output_name)
    if unparsed:
        problems.append(f"{len(unparsed)} file(s) in {run_dir / 'sample'} do not follow sd-scripts' sample "
                        f"naming and were skipped: {', '.join(p.name for p in unparsed[:5])}")
    by_epoch: dict[int, list[SampleImage]] = {}
    step_based = 0
    base_samples: list[SampleImage] = []
    for sample in samples:
        if sample.epoch is None:
            step_based += 1
            continue
        if sample.before_training:
            base_samples.append(sample)  # the calibration floor, not a candidate epoch
            continue
        by_epoch.setdefault(sample.epoch, []).append(sample)
    if step_based:
        problems.append(f"{step_based} step-based sample(s) (sample_every_n_steps) skipped: evaluation "
                        "compares epochs; use sample_every_n_epochs")
    checkpoints: dict[int, Checkpoint] = {}
    if output_name:
        last_epoch = record.total_epochs
        for checkpoint in find_checkpoints(run_dir, output_name, last_epoch=last_epoch):
            if checkpoint.epoch is not None:
                checkpoints[checkpoint.epoch] = checkpoint
    for epoch, path in record.checkpoints.items():
        if epoch not in checkpoints and path.is_file():
            checkpoints[epoch] = Checkpoint(path=path, epoch=epoch)
    if by_epoch:
        no_checkpoint = sorted(set(by_epoch) - set(checkpoints))
        if no_checkpoint:
            problems.append(f"samples of epoch(s) {no_checkpoint} have no checkpoint on disk: they are scored "
                            "but cannot be chosen as best")
    chosen_prompts = Path(prompts_file) if prompts_file else config.sample_prompts
    prompts: list[SamplePrompt] = []
    if chosen_prompts is not None:
        prompts = read_prompt_file(chosen_prompts)
    else:
        problems.append("no prompt file (--prompts, or sample_prompts in config/training.toml): "
                        "prompt adherence cannot be scored")
    no_samples = []
    for epoch in sorted(set(checkpoints) - set(by_epoch)):
        generated, seed_pass = find_generated_samples(run_dir, epoch, prompts)
        if generated:
            by_epoch[epoch] = generated
            problems.append(f"epoch {epoch} has no training-time samples: scored from its test-checkpoints "
                            f"images ({seed_pass}, {len(generated)} image(s))")
        else:
            no_samples.append(epoch)
    if no_samples:
        problems.append(f"checkpoint(s) of epoch(s) {no_samples} have no samples: not scored "
                        "(`lora-pipeline test-checkpoints` can generate some)")
    highest = max((s.prompt_index for group in by_epoch.values() for s in group), default=-1)
    if prompts and highest >= len(prompts):
        problems.append(f"prompt file {chosen_prompts} has {len(prompts)} prompt(s) but samples use index "
                        f"up to {highest}: samples beyond the file get no prompt-adherence score "
                        "(wrong prompt file?)")
    image_dirs = (Path(train_images),) if train_images else config.training_image_dirs
    if config.held_out_unknown:
        problems.append("validation_split without validation_seed: which images sd-scripts held out cannot be "
                        "known, so every image counts as a training image for the copying check")
    return RunFacts(run_dir=run_dir, output_name=output_name, record=record, samples_by_epoch=by_epoch,
                    checkpoints_by_epoch=checkpoints, prompts=prompts, prompts_file=chosen_prompts,
                    training_image_dirs=image_dirs, problems=problems, base_samples=base_samples,
                    held_out_images=config.held_out_images)


def find_generated_samples(run_dir: Path, epoch: int, prompts: Sequence[SamplePrompt]) -> tuple[list[SampleImage], str]:
    """The test-checkpoints images of ``epoch`` from one seed pass (the prompts' own seeds first, else the
    lowest seed), one per prompt, and that pass's folder name; ``([], "")`` when there are none."""
    folder = Path(run_dir) / GENERATED_FOLDER / f"e{epoch:06d}"
    passes = sorted((p for p in folder.glob("seed*") if p.is_dir()),
                    key=lambda p: (p.name != "seed_own", int(p.name[4:]) if p.name[4:].isdigit() else 0))
    for seed_pass in passes:
        found: dict[int, SampleImage] = {}
        for path in sorted(seed_pass.glob("im_*.png")):
            sample = read_generated_image(path, list(prompts), epoch)
            if sample is not None:
                found.setdefault(sample.prompt_index, sample)
        if found:
            return [found[i] for i in sorted(found)], seed_pass.name
    return [], ""


def _rows(value: Any) -> list[dict[str, Any]]:
    return [row for row in value if isinstance(row, dict)] if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number  # NaN and infinity are findings (a diverged run), not parse errors
