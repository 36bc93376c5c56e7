"""`lora-pipeline evaluate | test-checkpoints | compare`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from orchestrator.common.commands import device_type
from orchestrator.common.errors import UserInputError
from orchestrator.common.numbers import number_arg

if TYPE_CHECKING:
    from orchestrator.evaluate import EvaluationResult

console = Console(soft_wrap=True, highlight=False)


def register(subparsers: argparse._SubParsersAction) -> None:
    evaluate = subparsers.add_parser(
        "evaluate", help="score every sample epoch of a run, pick the best, write evaluation/ and report.html")
    evaluate.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the training run folder to score")
    evaluate.add_argument("--references", type=Path, required=True, metavar="REF_DIR",
                          help="folder of reference images of the character")
    evaluate.add_argument("--prompts", type=Path, metavar="FILE",
                          help="sample-prompt file (default: sample_prompts of RUN_DIR/config/training.toml)")
    evaluate.add_argument("--epoch", type=number_arg(int, low=0), action="append", metavar="N",
                          help="score only this epoch (repeatable); other epochs in scores.json are kept")
    evaluate.add_argument("--train-images", type=Path, metavar="DIR",
                          help="training images for the copying check (default: image_dir of config/dataset.toml)")
    evaluate.add_argument("--config", type=Path, metavar="FILE",
                          help="evaluation settings laid over configs/evaluation/default.toml")
    evaluate.add_argument("--device", type=device_type, default="cpu", help="torch device for CLIP (cpu, cuda, cuda:1)")
    evaluate.add_argument("--clip-model", help="open_clip architecture (default: [clip] model of the config)")
    evaluate.add_argument("--clip-weights", help="pretrained tag, local checkpoint file, or 'random'")
    evaluate.add_argument("--cache-dir", type=Path, help="embedding cache folder (default: ~/.cache/lora-pipeline)")
    evaluate.add_argument("--no-report", action="store_true", help="do not write RUN_DIR/report.html")
    evaluate.set_defaults(handler=_evaluate)

    generate = subparsers.add_parser(
        "test-checkpoints", help="more samples per checkpoint with sd-scripts' gen_img.py / sdxl_gen_img.py")
    generate.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the training run whose checkpoints to sample")
    generate.add_argument("--base-model", required=True, metavar="PATH", help="the base model the LoRA was trained on")
    generate.add_argument("--prompts", type=Path, metavar="FILE", help="default: the run's sample_prompts")
    generate.add_argument("--seeds", type=number_arg(int, low=0, high=2**32 - 1), nargs="+", metavar="SEED",
                          help="one pass per seed (prompt i gets --d SEED+i); default: the prompts' own --d")
    generate.add_argument("--epoch", type=number_arg(int, low=0), action="append", metavar="N", help="only this epoch (repeatable)")
    generate.add_argument("--family", choices=["sd15", "sdxl"], help="default: from RUN_DIR/run.json")
    generate.add_argument("--steps", type=number_arg(int, low=1), default=30, help="denoising steps per image (default: %(default)s)")
    generate.add_argument("--scale", type=number_arg(low=0), default=7.0,
                          help="classifier-free guidance scale (default: %(default)s)")
    generate.add_argument("--sampler", default="euler_a", help="the generator's sampler name (default: %(default)s)")
    generate.add_argument("--precision", choices=["fp16", "bf16", "fp32"], default="fp16",
                          help="weights' precision while generating (default: %(default)s)")
    generate.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    from orchestrator.config.paths import add_location_arguments

    add_location_arguments(generate)
    generate.set_defaults(handler=_test_checkpoints)

    compare = subparsers.add_parser("compare", help="evaluated runs side by side (table + comparison page)")
    compare.add_argument("evaluations", nargs="+", type=Path, metavar="EVAL",
                         help="run folders, their evaluation/ folders, or scores.json files")
    compare.add_argument("--output", type=Path, default=Path("comparison.html"), help="comparison page to write")
    compare.set_defaults(handler=_compare)


def _evaluate(args: argparse.Namespace) -> int:
    from orchestrator.evaluate import Evaluator, load_evaluation_config, with_overrides
    from orchestrator.evaluate._report import write_report

    config = load_evaluation_config(args.config)
    clip = {k: v for k, v in (("model", args.clip_model), ("weights", args.clip_weights)) if v}
    if clip:
        config = with_overrides(config, {"clip": clip})
    console.print(f"encoder {config.clip.model} / {config.clip.weights} on {args.device}; settings {config.source}")
    if not args.run_dir.is_dir():
        raise UserInputError("run folder not found", path=args.run_dir)
    if args.train_images is not None and not args.train_images.is_dir():  # else the copying check is skipped unseen
        raise UserInputError("training-image folder not found", path=args.train_images, key="train-images")
    with Evaluator(args.references, config=config, cache_dir=args.cache_dir, device=args.device,
                   progress=True) as evaluator:
        if evaluator.fatal:  # no usable references: nothing to score against, so score nothing
            raise UserInputError("; ".join(evaluator.fatal), path=args.references, key="references",
                                 hint="nothing was scored or written")
        result = evaluator.evaluate(args.run_dir, epochs=args.epoch, prompts_file=args.prompts,
                                    train_images=args.train_images)
    _print_scores(result)
    written = result.scores_path is not None
    report = None if args.no_report or not result.epochs or result.fatal else write_report(args.run_dir)
    if written:
        console.print(f"wrote {result.scores_path}, {result.best_path}" + (f", {report}" if report else ""))
    if result.fatal:
        kept = "partial scores were written" if written else "the earlier results were kept unchanged"
        raise UserInputError("evaluation incomplete: " + "; ".join(result.fatal), path=args.run_dir, hint=kept)
    return 0


def _print_scores(result: EvaluationResult) -> None:
    from orchestrator.evaluate import METRICS
    from orchestrator.evaluate._metrics import RAW_KEYS

    def number(value: float | None) -> str:
        return f"{value:.3f}" if value is not None else "—"

    table = Table(title=f"{result.run_dir} ({result.seconds:.1f} s) · cells: raw → calibrated")
    table.add_column("epoch", justify="right")
    for metric in METRICS:
        table.add_column(metric.replace("_", " "), justify="right")
    table.add_column("total [interval]", justify="right")
    table.add_column("gates", justify="left")
    best = result.best.epoch if result.best else None
    for epoch, score in result.epochs.items():
        values = [f"{number(score.raw.get(RAW_KEYS[m]))} → {number(score.metrics.get(m))}" for m in METRICS]
        interval = f" [{score.interval[0]:.3f}, {score.interval[1]:.3f}]" if score.interval else ""
        failed = score.failed_gates
        gates = ("failed: " + ", ".join(failed)) if failed else ("passed" if score.gates else "—")
        style = "bold green" if epoch == best else ("red" if failed else None)
        table.add_row(f"{epoch}{' *' if epoch == best else ''}", *values, number(score.total) + interval,
                      gates, style=style)
    console.print(table)
    if result.calibration is not None:
        calibration = Table(title=f"calibration ({result.calibration.base_samples} epoch-0 samples, "
                                  f"{result.calibration.references} references)")
        for column in ("metric", "floor", "ceiling", "fallback"):
            calibration.add_column(column)
        for metric in METRICS:
            if metric in result.calibration.metrics:
                c = result.calibration[metric]
                calibration.add_row(metric, f"{c.floor:.3f}", f"{c.ceiling:.3f}", escape(c.fallback or "—"))
        console.print(calibration)
    for epoch, score in result.epochs.items():
        for verdict in score.gates:
            if not verdict.passed:
                console.print(f"[red]epoch {epoch}: gate {verdict.gate} failed: {escape(verdict.detail)}[/red]")
    for problem in result.problems:
        console.print(f"[yellow]{escape(problem)}[/yellow]")
    for epoch, score in result.epochs.items():
        for warning in score.warnings:
            console.print(f"[yellow]epoch {epoch}: {escape(warning)}[/yellow]")
    if result.best:
        console.print(f"[bold green]best epoch {result.best.epoch}[/bold green]: {escape(result.best.reason)}")


def _test_checkpoints(args: argparse.Namespace) -> int:
    import shlex

    from orchestrator.config.paths import paths_from_args
    from orchestrator.evaluate._checkpoint_tests import plan_checkpoint_tests, run_jobs
    from orchestrator.kohya.generate import GenerationSettings

    paths = paths_from_args(args)
    settings = GenerationSettings(steps=args.steps, scale=args.scale, sampler=args.sampler,
                                  precision=None if args.precision == "fp32" else args.precision)
    try:
        jobs = plan_checkpoint_tests(
            args.run_dir, base_model=args.base_model, trainer_python=paths.trainer_python,
            sd_scripts=paths.sd_scripts, prompts_file=args.prompts, seeds=args.seeds, epochs=args.epoch,
            family=args.family, settings=settings, tokenizer_cache_dir=paths.tokenizer_cache_dir or None)
    except ValueError as error:
        raise UserInputError(str(error)) from error
    if args.dry_run:
        for job in jobs:
            console.print(f"# epoch {job.epoch}, seed {job.seed if job.seed is not None else 'own'} "
                          f"(cwd {job.command.cwd})")
            console.print(escape(shlex.join(job.command.argv)))
        return 0
    failed = [job for job, code in run_jobs(jobs, report=console.print) if code != 0]
    console.print(f"{len(jobs) - len(failed)}/{len(jobs)} generation job(s) succeeded; images under "
                  f"{args.run_dir / 'checkpoint_samples'}")
    return 1 if failed else 0


def _compare(args: argparse.Namespace) -> int:
    from orchestrator.evaluate._compare import (
        comparison_notes,
        comparison_rows,
        load_evaluated_run,
        write_comparison_page,
    )

    runs = [load_evaluated_run(path) for path in args.evaluations]
    table = Table(title="best epochs side by side")
    table.add_column("")
    for run in runs:
        table.add_column(run.label, justify="right")
    for title, cells in comparison_rows(runs):
        table.add_row(title, *cells)
    console.print(table)
    for note in comparison_notes(runs):
        console.print(f"- {escape(note)}")
    page = write_comparison_page(runs, args.output)
    console.print(f"wrote {page}")
    return 0
