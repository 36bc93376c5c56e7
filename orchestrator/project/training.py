"""The project's last steps: one training (re-adopted or resumed after a crash) or a search, then its judging.

A ``run`` killed while sd-scripts trains in tmux leaves the trainer running: the next ``run`` follows the
same trainer (``adopt_run``). A trainer that died too resumes from its newest saved state, so every epoch
is trained once; only with no state at all does it start again.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_write_text
from orchestrator.project.context import (
    SEARCH,
    RunContext,
    StageFailed,
    preset_document,
    preset_path,
    profile,
    references,
    run_dir,
    space_path,
)

SAMPLE_PROMPTS = (
    "standing on a beach, smiling",
    "running in a village street, waving",
    "close-up portrait, looking at the viewer",
)
SAMPLE_SIZE = {"cpu": 64, "sd15": 512, "sdxl": 1024}
SAMPLE_STEPS = {"cpu": 2, "cuda": 20}
SEARCH_STUDY = "project"


def _write_prompts(context: RunContext) -> Path:
    from orchestrator.kohya.generate import format_prompt_line
    from orchestrator.kohya.outputs import SamplePrompt

    family = str(context.project.get("project", "family"))
    size = SAMPLE_SIZE["cpu"] if context.device == "cpu" else SAMPLE_SIZE.get(family, 1024)
    steps = SAMPLE_STEPS.get(context.device, 20)
    trigger = profile(context).trigger
    lines = [format_prompt_line(SamplePrompt(index=i, text=f"{trigger}, {text}", negative="blurry", width=size,
                                             height=size, seed=1000 + i, steps=steps, cfg_scale=7.0))
             for i, text in enumerate(SAMPLE_PROMPTS)]
    return atomic_write_text(context.paths.prompts_file, "\n".join(lines) + "\n")


def _overrides(context: RunContext) -> dict[str, Any]:
    # A saved state per epoch is what lets a killed trainer resume without training an epoch twice, and
    # fresh loader workers each epoch what makes the resumed epochs draw the batches a straight run would.
    from orchestrator.kohya.arguments import flatten_training_tables
    from orchestrator.kohya.train_state import resumable_loader_arguments

    chosen = {**flatten_training_tables(preset_document(context)), **context.project.get("train", "set")}
    return {"save_state": True, **context.project.get("train", "set"), **resumable_loader_arguments(chosen),
            "output_name": context.name}


def _gpus(context: RunContext) -> str | None:
    return context.project.get("project", "gpus") or None


def run_training(context: RunContext) -> dict[str, Any]:
    from orchestrator.kohya.command import newest_state_dir
    from orchestrator.kohya.render import render_run
    from orchestrator.project.live import TrainingProgress
    from orchestrator.runner import start_training
    from orchestrator.runner.handle import adopt_run
    from orchestrator.runner.record import load_run_record

    folder = run_dir(context)
    resume = False
    if context.continuing and (folder / "run.json").is_file():
        record = load_run_record(folder)
        if record.is_active:  # its trainer may still run in tmux, or have ended while nobody watched
            print(f"re-adopting the training of {folder}")
            with TrainingProgress(enabled=context.progress) as progress:
                record = adopt_run(folder).follow(progress.on_event, poll_seconds=0.5)  # type: ignore[union-attr]
        if record.status == "succeeded":
            return _training_facts(folder, record)
        if newest_state_dir(folder, context.name) is not None:
            resume = True
            print(f"resuming the interrupted training in {folder} from its last saved state")
    if not resume:
        shutil.rmtree(folder, ignore_errors=True)
    context.models()  # the base model path (built when random) is in the paths the render reads
    _write_prompts(context)
    rendered = render_run(preset_path(context), overrides=_overrides(context), paths=context.paths, run_dir=folder)
    handle = start_training(rendered, paths=context.paths, gpus=_gpus(context), resume=resume,
                            allow_cpu=context.device == "cpu", tmux_socket=context.tmux_socket)
    print(f"training in tmux (watch: tmux -L {context.tmux_socket} attach -t {handle.record.tmux_session}); "
          f"log {handle.record.log_path}")
    with TrainingProgress(enabled=context.progress) as progress:
        record = handle.follow(progress.on_event, poll_seconds=0.5)
    if record.status != "succeeded":
        failure = record.failure or {}
        raise StageFailed(f"training {record.status}: {failure.get('cause', '')} {failure.get('message', '')}"
                          f" (log: {record.log_path}; run record: {record.path})")
    return _training_facts(folder, record)


def _training_facts(folder: Path, record: Any) -> dict[str, Any]:
    return {"run_dir": str(folder), "epochs": len(record.epochs), "checkpoints": len(record.checkpoints),
            "final_loss": record.losses[-1]["avr_loss"] if record.losses else None}


def _evaluation_config(context: RunContext) -> Any:
    from orchestrator.evaluate import load_evaluation_config, with_overrides

    models = context.models()
    return with_overrides(load_evaluation_config(), {"clip": {"model": models.clip_model,
                                                              "weights": models.clip_weights}})


def search_settings(context: RunContext) -> Any:
    """The project's ``[final]`` and ``[train]`` tables as the search's settings."""
    from orchestrator.search import SearchSettings, load_search_space
    from orchestrator.search.merge import merge_trial_config

    final = context.project.settings["final"]
    return SearchSettings(space=load_search_space(space_path(context)),
                          base_config=merge_trial_config(preset_document(context), context.project.get("train", "set")),
                          output=context.out / SEARCH, trials=final["trials"], study_name=SEARCH_STUDY,
                          seed=final["seed"] or None, references=references(context), gpus=_gpus(context),
                          scheduler=final["scheduler"], gpu_hours=final["gpu_hours"] or None)


def run_search(context: RunContext) -> dict[str, Any]:
    from orchestrator.project.live import SearchProgress
    from orchestrator.search import KohyaExecutor, Search

    context.models()
    _write_prompts(context)
    settings = search_settings(context)
    executor = KohyaExecutor(paths=context.paths, references=references(context), device=context.device,
                             gpus=_gpus(context),
                             allow_cpu=context.device == "cpu", tmux_socket=context.tmux_socket,
                             encoder=context.encoder(), evaluation_config=_evaluation_config(context),
                             poll_seconds=1.0)
    try:
        with SearchProgress(settings.trials, enabled=context.progress) as progress:
            summary = Search(settings, executor).run(on_progress=progress.on_progress)
    finally:
        executor.close()
    return {"storage": settings.storage, "counts": summary.counts, "best_trial": summary.best_number,
            "best_value": summary.best_value}


def evaluate_training(context: RunContext) -> dict[str, Any]:
    from orchestrator.evaluate import evaluate_run, write_report

    result = evaluate_run(run_dir(context), references=references(context), encoder=context.encoder(),
                          config=_evaluation_config(context), device=context.device, progress=context.progress)
    if result.best is None:
        raise StageFailed(f"evaluation chose no epoch: {'; '.join(result.fatal or result.problems)}")
    return {"scores": {str(epoch): score.total for epoch, score in sorted(result.epochs.items())},
            "best_epoch": result.best.epoch, "best_score": result.best.total if hasattr(result.best, "total") else None,
            "best_checkpoint": str(result.best.checkpoint) if result.best.checkpoint else None,
            "report": str(write_report(run_dir(context)))}


def _epoch_totals(run: Path) -> dict[str, float]:
    """Each epoch's total score, as the run's evaluation wrote it (for the status page's curve)."""
    import json

    try:
        epochs = json.loads((run / "evaluation" / "scores.json").read_text(encoding="utf-8"))["epochs"]
        return {str(epoch): float(data["total"]) for epoch, data in epochs.items()}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def evaluate_search(context: RunContext) -> dict[str, Any]:
    """The search's analysis, and the report of its best trial's run."""
    from orchestrator.evaluate import write_report
    from orchestrator.search.analyze import analyze

    analysis = analyze(context.out / SEARCH)
    best = analysis.best or {}
    if not best.get("checkpoint"):
        raise StageFailed(f"the search has no scored trial yet (see {context.out / SEARCH / 'trial_results.json'})")
    best_run = Path(best["checkpoint"]).parent  # the trial's run folder holds its checkpoints
    return {"best_trial": best.get("number"), "best_score": best.get("value"), "best_epoch": best.get("best_epoch"),
            "best_checkpoint": best.get("checkpoint"), "run_dir": str(best_run),
            "scores": _epoch_totals(best_run),
            "report": str(write_report(best_run)), "analysis": str(context.out / SEARCH / "analysis")}
