"""The quickstart's stages, in order, each a thin call into the stage's own public API: from a toy film
(extract, crop: ``film_steps.py``) to the best LoRA.

Each step takes the shared :class:`QuickstartState`, does its stage's work, stores what later steps
need on the state and returns a few facts for ``quickstart_summary.json``. Nothing here re-implements a
stage: curation, captions, training, evaluation and the search are the same code the CLI runs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_write_text
from orchestrator.config.paths import ProjectPaths
from orchestrator.project.models import resolve_models
from orchestrator.quickstart.film_steps import crop_step, extract_step, toy_film_step
from orchestrator.quickstart.state import (
    TOY_PROFILE,
    QuickstartFailed,
    QuickstartOptions,
    QuickstartState,
    Step,
)

_PACKAGE = Path(__file__).resolve().parent
PRESET_FILE = _PACKAGE / "preset.toml"
SEARCH_SPACE_FILE = _PACKAGE / "search_space.toml"
OUTPUT_NAME = "quickstart_toy"
SUBSET_NAME = "toyhero"
STUDY_NAME = "quickstart"
#: The sampler's seed. Everything else is seeded too, so a quickstart is reproducible; with seed 1 and the
#: random models the pruner stops the third trial after its first epoch, so the stop path runs for real.
SEARCH_SEED = 1

#: What a GPU changes so that the same command is a real (short) training: full resolution, fp16, more
#: repeats and epochs. Keys are kohya arguments or ``dataset.<key>``, as for ``--set``.
CUDA_OVERRIDES: dict[str, object] = {
    "dataset.resolution": 512, "dataset.batch_size": 2, "mixed_precision": "fp16", "save_precision": "fp16",
    "network_dim": 16, "network_alpha": 8.0, "max_train_epochs": 4, "gradient_checkpointing": True,
}
REPEATS = {"cpu": 1, "cuda": 10}
SAMPLE_SIZE = {"cpu": 64, "cuda": 512}
SAMPLE_STEPS = {"cpu": 2, "cuda": 20}
SAMPLE_PROMPTS = (
    "standing on a beach, smiling",
    "running in a village street, waving",
    "close-up portrait, looking at the viewer",
)


def quickstart_paths(options: QuickstartOptions, base: ProjectPaths) -> ProjectPaths:
    """The project's paths with every data and output location moved under OUT."""
    out = options.out
    trainer_python = options.trainer_python or base.trainer_python
    if "/" in trainer_python:  # a path (not a bare command): the trainer runs with cwd = sd-scripts
        trainer_python = str(Path(trainer_python).expanduser().absolute())
    return base.with_overrides(
        sd_scripts=Path(options.sd_scripts).expanduser().resolve() if options.sd_scripts else base.sd_scripts,
        trainer_python=trainer_python,
        dataset_dir=out / "data" / "kohya", output_root=out / "outputs", logs_dir=out / "logs" / "training",
        prompts_file=out / "prompts.txt",
    )


def check_step(state: QuickstartState) -> dict[str, Any]:
    """Fail in seconds, not after curation and captions, when training cannot start at all."""
    from orchestrator.kohya.checkout import TRAINING_SCRIPTS, inspect_checkout
    from orchestrator.runner import PreflightFailed
    from orchestrator.runner.preflight import check_tools

    report = check_tools(sd_scripts=state.paths.sd_scripts, trainer_python=state.paths.trainer_python,
                         script_name=TRAINING_SCRIPTS["sd15"])
    for warning in report.warnings:
        print(f"warning: {warning}")
    if not report.ok:
        raise PreflightFailed(report)
    return {"sd_scripts": inspect_checkout(state.paths.sd_scripts).describe(),
            "trainer_python": state.paths.trainer_python}


def models_step(state: QuickstartState) -> dict[str, Any]:
    from orchestrator.project.models import default_model_cache
    from orchestrator.vision import load_clip

    options = state.options
    models = resolve_models(cache_dir=options.model_cache or default_model_cache(), base_model=options.base_model,
                            clip_weights=options.clip_weights, clip_model=options.clip_model,
                            vlm_weights=options.vlm_weights, detector=options.detector,
                            segmenter=options.segmenter)
    state.models = models
    state.paths = state.paths.with_overrides(base_model_sd15=models.base_model,
                                             tokenizer_cache_dir=str(models.tokenizer_cache_dir))
    state.encoder = load_clip(models.clip_model, models.clip_weights, device=options.device)
    return {"base_model": models.base_model, "clip": f"{models.clip_model}/{models.clip_weights}",
            "vlm": models.vlm_weights, "random": list(models.random)}


def curate_step(state: QuickstartState) -> dict[str, Any]:
    from orchestrator.dataset.apply import apply_decisions
    from orchestrator.dataset.config import load_curation_config
    from orchestrator.dataset.curate import curate

    assert state.crops_dir is not None and state.references_dir is not None and state.models is not None
    config = load_curation_config()
    clip = replace(config.clip, model=state.models.clip_model, weights=state.models.clip_weights)
    identity = config.identity
    if state.models.clip_weights == "random":
        # Random CLIP scores are noise: a threshold would drop arbitrary frames. Scores are still
        # computed and recorded; with real weights the configured threshold applies.
        identity = replace(identity, threshold=-1.0, borderline_margin=0.0)
    config = replace(config, clip=clip, identity=identity)
    result = curate(state.crops_dir, state.references_dir, state.out / "curation", config,
                    device=state.options.device, encoder=state.encoder, progress=state.options.progress)
    selection = apply_decisions(result.out_dir)
    if not selection.copied:
        raise QuickstartFailed(f"curation kept no frame; see {result.out_dir / 'review.html'}")
    return {"funnel": result.summary["funnel"], "counts": result.summary["counts"],
            "rejections": result.summary["rejections"], "selected": len(selection.copied),
            "review": str(result.out_dir / "review.html")}


def prepare_step(state: QuickstartState) -> dict[str, Any]:
    from orchestrator.dataset import prepare_kohya_dataset

    prepared = prepare_kohya_dataset(state.out / "curation" / "selected", state.paths.dataset_dir,
                                     repeats=REPEATS.get(state.options.device, 1), name=SUBSET_NAME,
                                     overwrite=True)
    state.kohya_dir = prepared.folder
    return {"folder": str(prepared.folder), "images": prepared.images, "masked": prepared.masked}


def caption_step(state: QuickstartState) -> dict[str, Any]:
    from orchestrator.captions import caption_folder, load_qwen_backend
    from orchestrator.captions.profile import profile_from_mapping
    from orchestrator.captions.tiny_model import TINY_MAX_PIXELS, TINY_PATCH_PIXELS
    from orchestrator.dataset import validate_kohya_dataset

    assert state.kohya_dir is not None and state.models is not None
    budget: dict[str, int] = {}
    if state.models.vlm_is_random:
        # Its words are noise whatever the budget: a few visual tokens and a short answer keep it quick.
        budget = {"min_pixels": TINY_PATCH_PIXELS, "max_pixels": TINY_MAX_PIXELS, "max_new_tokens": 32}
    backend = load_qwen_backend("qwen2_vl", state.models.vlm_weights, device=state.options.device, **budget)
    report = caption_folder(state.kohya_dir, profile_from_mapping(TOY_PROFILE), backend=backend, batch_size=8,
                            progress=state.options.progress)
    del backend  # the trainer needs the memory next
    check = validate_kohya_dataset(state.paths.dataset_dir)
    if not check.ok:
        raise QuickstartFailed("the captioned dataset does not validate: "
                               + "; ".join(str(p) for p in check.problems[:3]))
    return {"written": len(report.written), "failures": len(report.failures), "dataset": check.counts_line(),
            "seconds_per_image": round(report.seconds / max(1, len(report.written)), 3)}


def _write_prompts(state: QuickstartState) -> Path:
    from orchestrator.kohya.generate import format_prompt_line
    from orchestrator.kohya.outputs import SamplePrompt

    device = state.options.device
    size, steps = SAMPLE_SIZE.get(device, 64), SAMPLE_STEPS.get(device, 4)
    trigger = str(TOY_PROFILE["trigger"])
    lines = [format_prompt_line(SamplePrompt(index=i, text=f"{trigger}, {text}", negative="blurry", width=size,
                                             height=size, seed=1000 + i, steps=steps, cfg_scale=7.0))
             for i, text in enumerate(SAMPLE_PROMPTS)]
    return atomic_write_text(state.paths.prompts_file, "\n".join(lines) + "\n")


def _write_preset(state: QuickstartState) -> Path:
    from orchestrator.common.tomlfile import read_toml, write_toml
    from orchestrator.search.merge import merge_trial_config

    preset = read_toml(PRESET_FILE)
    if state.options.device.startswith("cuda"):
        preset = merge_trial_config(preset, CUDA_OVERRIDES)
    return write_toml(state.out / "quickstart_preset.toml", preset)


def train_step(state: QuickstartState) -> dict[str, Any]:
    from orchestrator.kohya.render import render_run
    from orchestrator.project.live import TrainingProgress
    from orchestrator.runner import start_training

    _write_prompts(state)
    state.preset_file = _write_preset(state)
    rendered = render_run(state.preset_file, overrides={"output_name": OUTPUT_NAME}, paths=state.paths,
                          run_dir=state.paths.output_root / OUTPUT_NAME)
    handle = start_training(rendered, paths=state.paths, allow_cpu=state.options.device == "cpu",
                            tmux_socket=state.options.tmux_socket)
    print(f"training in tmux (watch: tmux -L {state.options.tmux_socket} attach -t {handle.record.tmux_session}); "
          f"log {handle.record.log_path}")
    with TrainingProgress(enabled=state.options.progress) as progress:
        record = handle.follow(progress.on_event, poll_seconds=0.5)
    state.run_dir = rendered.run_dir
    if record.status != "succeeded":
        failure = record.failure or {}
        raise QuickstartFailed(f"training {record.status}: {failure.get('cause', '')} {failure.get('message', '')}"
                               f" (log: {record.log_path}; run record: {record.path})")
    return {"run_dir": str(rendered.run_dir), "status": record.status, "summary": dict(record.summary),
            "epochs": [e.get("wall_seconds") for e in record.epochs],
            "final_loss": record.losses[-1]["avr_loss"] if record.losses else None,
            "checkpoints": dict(record.checkpoints), "tmux_session": record.tmux_session}


def _evaluation_config(state: QuickstartState) -> Any:
    from orchestrator.evaluate import load_evaluation_config, with_overrides

    assert state.models is not None
    return with_overrides(load_evaluation_config(),
                          {"clip": {"model": state.models.clip_model, "weights": state.models.clip_weights}})


def evaluate_step(state: QuickstartState) -> dict[str, Any]:
    from orchestrator.evaluate import evaluate_run

    assert state.references_dir is not None and state.run_dir is not None
    result = evaluate_run(state.run_dir, references=state.references_dir, encoder=state.encoder,
                          config=_evaluation_config(state), device=state.options.device,
                          progress=state.options.progress)
    if result.best is None:
        raise QuickstartFailed(f"evaluation chose no epoch: {'; '.join(result.fatal or result.problems)}")
    state.best_checkpoint = str(result.best.checkpoint) if result.best.checkpoint else None
    return {"epochs": {epoch: score.total for epoch, score in sorted(result.epochs.items())},
            "best_epoch": result.best.epoch, "best_checkpoint": state.best_checkpoint,
            "scores": str(result.scores_path), "best": str(result.best_path)}


def search_step(state: QuickstartState) -> dict[str, Any]:
    import optuna

    from orchestrator.common.tomlfile import read_toml
    from orchestrator.project.live import SearchProgress
    from orchestrator.search import KohyaExecutor, Search, SearchSettings, load_search_space

    assert state.references_dir is not None and state.preset_file is not None
    output = state.out / "search"
    settings = SearchSettings(space=load_search_space(SEARCH_SPACE_FILE), base_config=read_toml(state.preset_file),
                              output=output, trials=state.options.trials, study_name=STUDY_NAME, pruner="median",
                              seed=SEARCH_SEED, references=state.references_dir)
    executor = KohyaExecutor(paths=state.paths, references=state.references_dir, device=state.options.device,
                             allow_cpu=state.options.device == "cpu", tmux_socket=state.options.tmux_socket,
                             encoder=state.encoder, evaluation_config=_evaluation_config(state), poll_seconds=1.0)
    search = Search(settings, executor)
    # The search's default median pruner waits for 5 trials and 4 epochs; with 3 trials of 2 epochs it
    # could never act. This one compares each trial's first epoch with the trials before it.
    search.study.pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    try:
        with SearchProgress(settings.trials, enabled=state.options.progress) as progress:
            summary = search.run(on_progress=progress.on_progress)
    finally:
        executor.close()
    state.search_output = output
    return {"storage": settings.storage, "study": STUDY_NAME, "counts": summary.counts,
            "best_trial": summary.best_number, "best_value": summary.best_value,
            "results": str(summary.results_path) if summary.results_path else None}


def report_step(state: QuickstartState) -> dict[str, Any]:
    from orchestrator.evaluate import write_report
    from orchestrator.search.analyze import analyze

    assert state.run_dir is not None
    state.report = write_report(state.run_dir)
    facts: dict[str, Any] = {"report": str(state.report)}
    if state.search_output is not None:
        analysis = analyze(state.search_output)
        state.search_best = analysis.best
        facts["search_analysis"] = str(state.search_output / "analysis")
        facts["search_best"] = analysis.best
    return facts


def votes_step(state: QuickstartState) -> dict[str, Any]:
    """Offer the blind comparison page of the top checkpoints (a person's verdict is the last word)."""
    from orchestrator.common.errors import UserInputError
    from orchestrator.verdict import select_candidates, write_comparison_page

    source = state.search_output or state.run_dir
    try:
        page = write_comparison_page(select_candidates(source, top=5))
    except UserInputError as error:  # e.g. fewer than two comparable checkpoints: nothing to compare
        return {"votes_page": None, "reason": str(error)}
    state.votes_page = page.page
    return {"votes_page": str(page.page), "comparisons": page.comparisons,
            "apply_command": f"lora-pipeline votes apply {page.page.parent / 'votes.json'}"}


STEPS: tuple[Step, ...] = (
    Step("check", "tmux, sd-scripts and the trainer Python are there", check_step),
    Step("models", "build or load the models", models_step),
    Step("toy film", "draw a short toy film (cuts, a second character, a fade, a frozen stretch) and "
         "references", toy_film_step),
    Step("extract", "shots and the sharpest usable frames of each shot", extract_step),
    Step("crop", "detector boxes, the hero's chosen by identity, cropped with its mask", crop_step),
    Step("curate", "quality, near-duplicates and identity of the crops against the references", curate_step),
    Step("prepare", "copy the selected frames into the kohya folder", prepare_step),
    Step("caption", "caption every image with the VLM and the character profile", caption_step),
    Step("train", "train with sd-scripts in tmux", train_step),
    Step("evaluate", "score every epoch's samples and choose the best", evaluate_step),
    Step("search", "hyperparameter search with pruning on SQLite", search_step),
    Step("report", "write the HTML report and the search analysis", report_step),
    Step("votes", "a blind comparison page of the top checkpoints for a person's verdict", votes_step),
)
