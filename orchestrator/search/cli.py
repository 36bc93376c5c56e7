"""`lora-pipeline search`, `search worker`, `search analyze`.

Heavy imports (Optuna, the evaluator's CLIP model, matplotlib) happen inside the handlers.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DEFAULT_SPACE = Path("configs/search/luca_tpe_v2_1.toml")  # relative to the project root
DEFAULT_STUDY_NAME = "lora_hyperparameter_search"


def register(subparsers: argparse._SubParsersAction) -> None:
    search = subparsers.add_parser(
        "search", help="Optuna search over training parameters, scored by the evaluator",
        description="Train trials of a base preset with parameters from a search space; every trial is "
                    "checked against the seven safety rules first, scored after each sample epoch, and "
                    "pruned when it is a clear loser. Re-running the same command resumes.")
    search.add_argument("--space", type=Path, default=DEFAULT_SPACE, help="search space TOML (default: %(default)s)")
    search.add_argument("--base-config", required=True, help="base preset name or file (configs/training/)")
    search.add_argument("--references", type=Path, help="folder of reference images of the character "
                                                       "(required unless --executor simulated)")
    search.add_argument("--trials", type=int, default=20, help="trained trials in total (default: %(default)s)")
    search.add_argument("--sampler", choices=["tpe", "random"], default="tpe")
    search.add_argument("--pruner", choices=["catchup", "median", "hyperband", "none"], default="catchup",
                        help="catchup: stop a trial once it can no longer reach the best finished score "
                             "(default); median: the guide's median pruner after epoch 4; hyperband; none")
    search.add_argument("--warm-start", action="store_true",
                        help="train the base preset and the space file's [warm_start] presets first (each one "
                             "that lies in the search space; once, when the study is created). Off by default: "
                             "on the simulator it anchors TPE on the reference's choices (see README)")
    search.add_argument("--seed", type=int, help="sampler seed (resumes draw fresh numbers from it)")
    search.add_argument("--patience", type=int, default=2,
                        help="stop a trial after this many sample epochs without a better score; its best "
                             "checkpoint is kept and it completes normally (0 = train every epoch; "
                             "default: %(default)s)")
    _add_study_arguments(search, output_help="search folder (default: outputs/<study-name>)")
    _add_executor_arguments(search)
    search.set_defaults(handler=run_search_command)

    worker = subparsers.add_parser(
        "search worker", help="join a shared search study (PostgreSQL) from another GPU or machine",
        description="Train trials of a study that `lora-pipeline search` created; space, base preset, "
                    "total and references come from the study.")
    _add_study_arguments(worker, output_help="this worker's folder (default: outputs/<study-name>_worker)")
    worker.add_argument("--references", type=Path, help="override the references folder stored in the study")
    _add_executor_arguments(worker)
    worker.set_defaults(handler=run_worker_command)

    status = subparsers.add_parser("search status", help="trials by outcome, best so far, running trials")
    status.add_argument("output", type=Path, help="the search folder (holds trial_results.json)")
    status.add_argument("--watch", type=float, metavar="SECONDS", help="redraw every SECONDS until Ctrl-C")
    status.set_defaults(handler=run_status_command)

    analyze = subparsers.add_parser(
        "search analyze", help="best trial, effects, importances, plots and a ready-to-train preset")
    analyze.add_argument("output", type=Path, help="the search folder (holds trial_results.json)")
    analyze.add_argument("--storage", help="study storage URL (default: sqlite:///OUTPUT/optuna_study.db)")
    analyze.set_defaults(handler=run_analyze_command)


def _add_study_arguments(parser: argparse.ArgumentParser, *, output_help: str) -> None:
    parser.add_argument("--storage", help="Optuna storage URL: sqlite:///PATH (default: sqlite:///OUTPUT/"
                                          "optuna_study.db) or postgresql://USER:PASS@HOST:PORT/DB")
    parser.add_argument("--study-name", default=DEFAULT_STUDY_NAME, help="default: %(default)s")
    parser.add_argument("--output", type=Path, help=output_help)


def _add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--executor", choices=["kohya", "simulated"], default="kohya",
                        help="kohya: train for real; simulated: a synthetic response surface, to try the "
                             "search without a GPU")
    parser.add_argument("--device", default="cuda", help="where the evaluator's CLIP model runs")
    parser.add_argument("--gpus", help="GPU numbers for training, e.g. 0 or 0,1")
    parser.add_argument("--allow-cpu", action="store_true", help="train without a GPU (slow; tests)")
    parser.add_argument("--evaluation-config", type=Path, help="evaluation TOML (default: configs/evaluation/"
                                                               "default.toml)")
    parser.add_argument("--heartbeat", type=int, default=60, help="seconds between a trial's heartbeats")
    parser.add_argument("--grace", type=int, default=600,
                        help="a trial whose worker has been silent this long is failed and re-queued")


def run_search_command(args: argparse.Namespace) -> int:
    from orchestrator.common.errors import UserInputError
    from orchestrator.common.tomlfile import read_toml
    from orchestrator.config.paths import load_paths
    from orchestrator.config.presets import load_preset, resolve_preset_path
    from orchestrator.search.space import load_search_space
    from orchestrator.search.study import SearchSettings

    paths = load_paths()
    if args.trials < 0:
        raise UserInputError("must be 0 or more", key="trials")
    if args.executor == "kohya" and args.references is None:
        raise UserInputError("--references DIR is required to score trials", key="references")
    if args.executor == "kohya" and not args.references.is_dir():
        raise UserInputError("reference folder not found", path=args.references,
                             hint="a folder of images of the character, used to score every trial")
    from orchestrator.search.warm_start import load_warm_start

    preset_path = resolve_preset_path(args.base_config, paths.root)
    base = load_preset(preset_path, paths.root)  # refuse a broken base now, not after the first trial
    output = (args.output or paths.output_root / args.study_name).resolve()
    space_path = args.space if args.space.is_absolute() or args.space.is_file() else paths.root / args.space
    space = load_search_space(space_path)
    base_config = read_toml(preset_path)
    warm_start: tuple = ()
    if args.warm_start:
        plan = load_warm_start(space, paths.root, base=(base.name, base_config))
        for note in plan.notes:
            print(note)
        warm_start = tuple(plan.points)
    settings = SearchSettings(
        space=space, base_config=base_config, output=output, warm_start=warm_start,
        trials=args.trials, study_name=args.study_name, storage_url=args.storage, sampler=args.sampler,
        pruner=args.pruner, seed=args.seed, patience=args.patience, heartbeat_interval=args.heartbeat, grace_period=args.grace,
        references=args.references.resolve() if args.references else None,
    )
    return _run(settings, args, paths)


def run_worker_command(args: argparse.Namespace) -> int:
    from orchestrator.common.errors import UserInputError
    from orchestrator.config.paths import load_paths
    from orchestrator.search.study import load_worker_settings

    if not args.storage:
        raise UserInputError("a worker needs the shared study's --storage URL", key="storage")
    paths = load_paths()
    output = (args.output or paths.output_root / f"{args.study_name}_worker").resolve()
    settings = load_worker_settings(args.storage, args.study_name, output, heartbeat_interval=args.heartbeat,
                                    grace_period=args.grace)
    if args.references is not None:
        from dataclasses import replace

        settings = replace(settings, references=args.references.resolve())
    if args.executor == "kohya" and settings.references is None:
        raise UserInputError("the study stores no references folder; pass --references DIR", key="references")
    return _run(settings, args, paths)


def _run(settings: Any, args: argparse.Namespace, paths: Any) -> int:
    from orchestrator.common.progress import progress_bar
    from orchestrator.search.optuna_setup import redact_url
    from orchestrator.search.results import counted_trials
    from orchestrator.search.study import Search

    executor = _make_executor(args, settings, paths)
    search = Search(settings, executor)
    print(f"study {settings.study_name!r} in {redact_url(settings.storage)}")
    print(f"trials: {settings.output / 'trials'}   results: {settings.output / 'trial_results.json'}")
    print(f"dashboard: optuna-dashboard --host 127.0.0.1 --port 8080 {redact_url(settings.storage)}")
    try:
        with progress_bar(unit="trial") as bar:
            task = bar.add_task("search", total=settings.trials, rate="")
            done = len(counted_trials(search.study.get_trials(deepcopy=False)))
            bar.update(task, completed=done)

            def on_progress(trials: Any) -> None:
                complete = [t for t in trials if t.value is not None]
                best = max((t.value for t in complete), default=None)
                bar.update(task, completed=len(counted_trials(trials)),
                           rate=f"best {best:.4f}" if best is not None else "")

            summary = search.run(on_progress=on_progress)
    finally:
        close = getattr(executor, "close", None)
        if close is not None:
            close()
    print(f"{summary.counted_trials} trials ({summary.counts}); GPU time {summary.gpu_seconds / 3600:.2f} h")
    if summary.best_number is not None:
        print(f"best: trial {summary.best_number}, score {summary.best_value:.4f}")
    if summary.adopted:
        print(f"re-adopted trainers of trials {summary.adopted}")
    print(f"next: lora-pipeline search analyze {settings.output}")
    return 0


def _make_executor(args: argparse.Namespace, settings: Any, paths: Any) -> Any:
    if args.executor == "simulated":
        from orchestrator.search.simulator import ResponseSurface, SimulatedExecutor

        return SimulatedExecutor(surface=ResponseSurface(seed=settings.seed or 0))
    from orchestrator.search.kohya_executor import KohyaExecutor

    evaluation_config = None
    if args.evaluation_config is not None:
        from orchestrator.evaluate import load_evaluation_config

        evaluation_config = load_evaluation_config(args.evaluation_config)
    return KohyaExecutor(paths=paths, references=settings.references, device=args.device, gpus=args.gpus,
                         allow_cpu=args.allow_cpu, evaluation_config=evaluation_config)


def run_analyze_command(args: argparse.Namespace) -> int:
    from orchestrator.search.analyze import ANALYSIS_DIR, analyze

    output = args.output.resolve()
    analysis = analyze(output, storage_url=args.storage)
    for note in analysis.notes:
        print(f"note: {note}")
    if analysis.best is None:
        print(f"no completed trial yet; wrote {output / ANALYSIS_DIR}")
        return 1
    best = analysis.best
    print(f"best trial {best['number']}: score {best['value']:.4f} at epoch {best['best_epoch']} "
          f"({best['checkpoint']})")
    for name, value in list(analysis.importances.items())[:5]:
        print(f"  importance {name}: {value:.3f}")
    print(f"wrote {output / ANALYSIS_DIR} ({len(analysis.plots)} plots), {output / 'best_parameters.json'}"
          + (f", {output / 'best_trial_config.toml'}" if (output / "best_trial_config.toml").is_file() else ""))
    return 0


def run_status_command(args: argparse.Namespace) -> int:
    import time

    from orchestrator.search.monitor import status_lines

    while True:
        lines = status_lines(args.output.resolve())
        if args.watch:
            print("\033[2J\033[H", end="")  # clear the screen between redraws
        print("\n".join(lines), flush=True)
        if not args.watch:
            return 0
        time.sleep(args.watch)
