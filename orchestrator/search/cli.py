"""`lora-pipeline search`, `search worker` (the read-only `search analyze` and `search status`: cli_inspect.py).

Heavy imports (Optuna, the evaluator's CLIP model, matplotlib) happen inside the handlers.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from orchestrator.common.commands import (
    OUTPUT_OPTION,
    add_output_folder,
    add_verbs,
    device_type,
    gpu_list,
    gpus_text,
)
from orchestrator.common.numbers import number_arg
from orchestrator.runner.state_budget import DEFAULT_STATE_BUDGET_GB, budget_bytes
from orchestrator.search.choices import (
    DEFAULT_PRUNER,
    DEFAULT_SAMPLER,
    DEFAULT_SCHEDULER,
    DEFAULT_STUDY_NAME,
    PRUNER_KINDS,
    SAMPLER_KINDS,
    SCHEDULER_KINDS,
)
from orchestrator.search.cli_inspect import run_analyze_command, run_status_command
from orchestrator.search.start_checks import (
    check_study_options,
    refuse_broken_base,
    refuse_space_the_base_cannot_take,
    require_reference_images,
)
from orchestrator.search.vocabulary import OBJECTIVE_ATTR

DEFAULT_SPACE = Path("configs/search/luca_tpe_v2_1.toml")  # relative to the project root


def register(subparsers: argparse._SubParsersAction) -> None:
    command = subparsers.add_parser(
        "search", help="Optuna search over training parameters, scored by the evaluator",
        description="Without a verb, `search ...` is `search run ...` (see `search run --help`).")
    verbs = add_verbs(command, dest="search_command", default="run")
    search = verbs.add_parser(
        "run", help="start or resume a search (the default verb)",
        description="Train trials of a base preset with parameters from a search space; every trial is "
                    "checked against the seven safety rules first, scored after each sample epoch, and "
                    "pruned when it is a clear loser. Re-running the same command resumes.")
    search.add_argument("--space", type=Path, default=DEFAULT_SPACE, help="search space TOML (default: %(default)s)")
    search.add_argument("--base-config", required=True, help="base preset name or file (configs/training/)")
    search.add_argument("--references", type=Path, help="folder of reference images of the character "
                                                       "(required unless --executor simulated)")
    search.add_argument("--trials", type=number_arg(int, low=0, high=100_000), default=20, help="trained trials in total (default: %(default)s)")
    search.add_argument("--sampler", choices=SAMPLER_KINDS, default=DEFAULT_SAMPLER,
                        help="how the next trial's hyperparameters are drawn (default: %(default)s)")
    search.add_argument("--pruner", choices=PRUNER_KINDS, default=DEFAULT_PRUNER,
                        help="catchup: stop a trial once it can no longer reach the best finished score "
                             "(default); median: the guide's median pruner after epoch 4; hyperband; none")
    search.add_argument("--scheduler", choices=SCHEDULER_KINDS, default=DEFAULT_SCHEDULER,
                        help="pause: runs pause at sample epochs and a learning-curve model decides which one "
                             "gets the GPU next; first-epoch: every config trains to its first sample epoch, "
                             "the best of each 4 runs on; none: one run at a time, stopped by --pruner "
                             "(default: %(default)s; see orchestrator/search/scheduler.py)")
    search.add_argument("--gpu-hours", type=number_arg(float, low=0.0), default=None,
                        help="GPU budget of the scheduler: near its end no new config starts and the paused "
                             "runs that could still beat the best are finished (default: the search ends by --trials)")
    search.add_argument("--state-budget", type=number_arg(float, low=0.0), default=DEFAULT_STATE_BUDGET_GB,
                        metavar="GB", help="disk the paused runs' training states may take; over it, the least "
                                           "promising paused run's state is deleted and that run becomes final at "
                                           "its best so far ('state evicted'); the pre-flight keeps the unused "
                                           "part free (default: %(default)s GB; 0 keeps no paused state)")
    search.add_argument("--warm-start", action="store_true",
                        help="train the base preset and the space file's [warm_start] presets first (each one "
                             "that lies in the search space; once, when the study is created). Off by default: "
                             "on the simulator it anchors TPE on the reference's choices (see README)")
    search.add_argument("--prior", metavar="FOLDER_OR_URL",
                        help="start from a finished search of another character of the same film: its search "
                             "folder, or a storage URL with --prior-study. Its best configs are trained first "
                             "(scored again here) and its good region shapes the first trials until this study "
                             "outgrows it; stored in the study, so a resume or a worker keeps it (default: the space "
                             "file's [prior] table; see README)")
    search.add_argument("--prior-study", metavar="NAME",
                        help="the prior's study name (with --prior URL; default for a folder: the name in its "
                             "trial_results.json)")
    search.add_argument("--seed", type=number_arg(int, low=0, high=2**32 - 1), help="sampler seed (resumes draw fresh numbers from it)")
    search.add_argument("--patience", type=number_arg(int, low=0), default=2,
                        help="stop a trial after this many sample epochs without a better score; its best "
                             "checkpoint is kept and it completes normally (0 = train every epoch; "
                             "default: %(default)s)")
    # --gpus trains one trial on several GPUs, --parallel-gpus one trial per GPU: one of them.
    gpus = search.add_mutually_exclusive_group()
    gpus.add_argument("--parallel-gpus", metavar="LIST", type=gpu_list,
                        help="one trial per GPU at the same time, e.g. 0,1,2,3: a worker process per GPU, each "
                             "trainer pinned to its GPU in its own tmux session, one shared study in "
                             "OUTPUT/optuna_journal.log (no database server); excludes --gpus")
    _add_study_arguments(search, output_help="search folder (default: outputs/<study-name>)")
    _add_executor_arguments(search, gpus=gpus)
    search.set_defaults(handler=run_search_command)

    worker = verbs.add_parser(
        "worker", help="join a shared search study (PostgreSQL) from another GPU or machine",
        description="Train trials of a study that `lora-pipeline search` created; space, base preset, "
                    "total and references come from the study.")
    _add_study_arguments(worker, output_help="this worker's folder (default: outputs/<study-name>_worker)")
    worker.add_argument("--references", type=Path, help="override the references folder stored in the study")
    _add_executor_arguments(worker)
    worker.set_defaults(handler=run_worker_command)

    status = verbs.add_parser("status", help="trials by outcome, best so far, running trials")
    status.add_argument("output", type=Path, help="the search folder (holds trial_results.json)")
    status.add_argument("--watch", type=number_arg(low=0, above_low=True), metavar="SECONDS", help="redraw every SECONDS until Ctrl-C")
    status.set_defaults(handler=run_status_command)

    analyze = verbs.add_parser(
        "analyze", help="best trial, effects, importances, plots and a ready-to-train preset")
    analyze.add_argument("output", type=Path, help="the search folder (holds trial_results.json)")
    analyze.add_argument("--storage", help="study storage URL (default: OUTPUT/optuna_journal.log when there "
                                           "is one, else sqlite:///OUTPUT/optuna_study.db)")
    analyze.set_defaults(handler=run_analyze_command)


def _add_study_arguments(parser: argparse.ArgumentParser, *, output_help: str) -> None:
    parser.add_argument("--storage", help="Optuna storage URL: sqlite:///PATH (default: sqlite:///OUTPUT/"
                                          "optuna_study.db; OUTPUT/optuna_journal.log with --parallel-gpus), "
                                          "journal:///PATH (several processes, one machine) or "
                                          "postgresql://USER:PASS@HOST:PORT/DB (several machines)")
    parser.add_argument("--study-name", default=DEFAULT_STUDY_NAME, help="default: %(default)s")
    add_output_folder(parser, help=output_help, old_names=("--output",))


def _add_executor_arguments(parser: argparse.ArgumentParser, *,
                            gpus: argparse._ActionsContainer | None = None) -> None:
    """The options of the trainer and the evaluator; ``--gpus`` goes into ``gpus`` when given (the group that
    makes it exclude ``--parallel-gpus``)."""
    parser.add_argument("--executor", choices=["kohya", "simulated"], default="kohya",
                        help="kohya: train for real; simulated: a synthetic response surface, to try the "
                             "search without a GPU")
    parser.add_argument("--device", type=device_type, help="where the evaluator's CLIP model runs, e.g. cuda:1 to keep it off "
                                         "the training GPU (default: cuda; cpu with --allow-cpu). On a CUDA "
                                         "device it is freed between trials")
    (gpus or parser).add_argument("--gpus", type=gpu_list, help="GPU numbers for training, e.g. 0 or 0,1 (one trial on all of them); "
                                       "their lock files keep other trainers of this tool off them")
    parser.add_argument("--allow-cpu", action="store_true", help="train without a GPU (slow; tests)")
    parser.add_argument("--evaluation-config", type=Path, help="evaluation TOML (default: configs/evaluation/"
                                                               "default.toml)")
    parser.add_argument("--heartbeat", type=number_arg(int, low=1), default=60, help="seconds between a trial's heartbeats")
    parser.add_argument("--grace", type=number_arg(int, low=1), default=600,
                        help="a trial whose worker has been silent this long is failed and re-queued")


def run_search_command(args: argparse.Namespace) -> int:
    from orchestrator.common.errors import UserInputError, require_folder_target
    from orchestrator.common.tomlfile import read_toml
    from orchestrator.config.paths import load_paths
    from orchestrator.config.presets import load_preset, resolve_preset_path
    from orchestrator.search.space import load_search_space
    from orchestrator.search.study import SearchSettings

    paths = load_paths()
    check_study_options(args)
    if args.evaluation_config is not None:  # read now, whatever the executor: a bad file is never ignored
        from orchestrator.evaluate import load_evaluation_config

        load_evaluation_config(args.evaluation_config)
    if args.executor == "kohya" and args.references is None:
        raise UserInputError("--references DIR is required to score trials", key="references")
    if args.executor == "kohya":
        require_reference_images(args.references)
    from orchestrator.search.warm_start import load_warm_start

    preset_path = resolve_preset_path(args.base_config, paths.root)
    base = load_preset(preset_path, paths.root)  # refuse a broken base now, not after the first trial
    output = require_folder_target((args.output or paths.output_root / args.study_name).resolve(), key="output")
    refuse_broken_base(base, paths, output, check_paths=args.executor == "kohya")
    space_path = args.space if args.space.is_absolute() or args.space.is_file() else paths.root / args.space
    space = load_search_space(space_path)
    refuse_space_the_base_cannot_take(space, base, paths, output)
    base_config = read_toml(preset_path)
    warm_start: tuple = ()
    if args.warm_start:
        plan = load_warm_start(space, paths.root, base=(base.name, base_config))
        for note in plan.notes:
            print(note)
        warm_start = tuple(plan.points)
    from orchestrator.search.storage import default_storage_url

    parallel = bool(args.parallel_gpus)
    dataset, prior = _prior_plan(args, space, base_config, base, paths, output)
    settings = SearchSettings(
        space=space, base_config=base_config, output=output, warm_start=warm_start, gpus=gpus_text(args.gpus),
        prior=prior, dataset=dataset, trials=args.trials, study_name=args.study_name, sampler=args.sampler,
        storage_url=args.storage or default_storage_url(output, parallel=parallel),
        scheduler=args.scheduler, gpu_hours=args.gpu_hours,
        state_budget_bytes=budget_bytes(args.state_budget),
        pruner=args.pruner, seed=args.seed, patience=args.patience, heartbeat_interval=args.heartbeat, grace_period=args.grace,
        references=args.references.resolve() if args.references else None,
    )
    if parallel:
        return _run_parallel(settings, args, paths)
    return _run(settings, args, paths)


def _prior_plan(args: argparse.Namespace, space: Any, base_config: Any, base: Any, paths: Any,
                output: Path) -> tuple[Any, Any]:
    """The training set's size (stored in a new study) and the plan of ``--prior`` (None without it)."""
    from orchestrator.common.errors import UserInputError
    from orchestrator.search.dataset_size import base_preset_size

    if args.prior_study and not args.prior:
        raise UserInputError("--prior-study names the study of --prior; give --prior FOLDER_OR_URL too",
                             key="prior-study")
    from orchestrator.search.prior import load_prior, plan_prior, prior_named_in

    dataset = base_preset_size(base, paths, output)
    source, study = (args.prior, args.prior_study) if args.prior else prior_named_in(space.source, paths.root)
    if not source:
        return dataset, None
    if "://" not in str(source) and Path(source).expanduser().resolve() == output:
        raise UserInputError("is this search's own folder: a prior is another, finished search (of another "
                             "character of the same film)", key="prior", path=output)
    plan = plan_prior(load_prior(source, study), space, base_config, dataset=dataset)
    for line in plan.describe():
        print(line)
    return dataset, plan


def run_worker_command(args: argparse.Namespace) -> int:
    from orchestrator.common.errors import UserInputError, require_folder_target
    from orchestrator.config.paths import load_paths
    from orchestrator.search.study import load_worker_settings

    if not args.storage:
        raise UserInputError("a worker needs the shared study's --storage URL", key="storage")
    check_study_options(args)
    paths = load_paths()
    output = require_folder_target((args.output or paths.output_root / f"{args.study_name}_worker").resolve(),
                                   key="output")
    # A worker on given GPUs is one of several on this machine: it re-adopts only its own GPUs' trials.
    settings = load_worker_settings(args.storage, args.study_name, output, heartbeat_interval=args.heartbeat,
                                    grace_period=args.grace, gpus=gpus_text(args.gpus), own_gpu_orphans_only=bool(args.gpus))
    if args.references is not None:
        from dataclasses import replace

        settings = replace(settings, references=args.references.resolve())
    if args.executor == "kohya":
        if settings.references is None:
            raise UserInputError("the study stores no references folder; pass --references DIR", key="references")
        require_reference_images(settings.references)
    return _run(settings, args, paths)


def _print_study(settings: Any) -> None:
    from orchestrator.search.storage import JOURNAL_SCHEME, journal_path, redact_url

    storage = settings.storage
    print(f"study {settings.study_name!r} in {redact_url(storage)}")
    print(f"trials: {settings.output / 'trials'}   results: {settings.output / 'trial_results.json'}")
    shown = journal_path(storage) if storage.startswith(JOURNAL_SCHEME) else redact_url(storage)
    print(f"dashboard: optuna-dashboard --host 127.0.0.1 --port 8080 {shown}")


def _search_progress(bar: Any, settings: Any) -> Any:
    """A callback that shows the study's counted trials and best score on ``bar``."""
    from orchestrator.search.results import counted_trials

    task = bar.add_task("search", total=settings.trials, rate="")

    def on_progress(trials: Any) -> None:
        complete = [t for t in trials if t.value is not None]
        best = max((t.value for t in complete), default=None)
        bar.update(task, completed=len(counted_trials(trials)), rate=f"best {best:.4f}" if best is not None else "")

    return on_progress


def _run(settings: Any, args: argparse.Namespace, paths: Any) -> int:
    from orchestrator.common.progress import progress_bar
    from orchestrator.runner.gpu_lock import GpuLock
    from orchestrator.search.parallel import die_with_supervisor, gpu_wait_seconds, worker_lock_purpose
    from orchestrator.search.study import Search

    die_with_supervisor()  # a worker of `search run --parallel-gpus` ends with its parent
    executor = _make_executor(args, settings, paths)
    search = Search(settings, executor)
    _print_study(settings)
    try:
        # Held from before the resume re-adopts a trainer until the last trial ends: one trainer per GPU.
        with GpuLock(list(args.gpus or ()), purpose=worker_lock_purpose(settings.study_name, settings.output),
                     wait=gpu_wait_seconds()), progress_bar(unit="trial") as bar:
            on_progress = _search_progress(bar, settings)
            on_progress(search.study.get_trials(deepcopy=False))
            summary = search.run(on_progress=on_progress)
    finally:
        close = getattr(executor, "close", None)
        if close is not None:
            close()
    _print_summary(summary, settings)
    return 0


def _print_summary(summary: Any, settings: Any) -> None:
    print(f"{summary.counted_trials} trials ({summary.counts}); GPU time {summary.gpu_seconds / 3600:.2f} h")
    if summary.best_number is not None:
        print(f"best: trial {summary.best_number}, score {summary.best_value:.4f}")
    if summary.adopted:
        print(f"re-adopted trainers of trials {summary.adopted}")
    print(f"next: lora-pipeline search analyze {settings.output}")


def _run_parallel(settings: Any, args: argparse.Namespace, paths: Any) -> int:
    """Create or check the study here, then one `search worker --gpus N` process per GPU (parallel.py)."""
    import sys
    import time

    from orchestrator.common.errors import UserInputError
    from orchestrator.common.progress import progress_bar
    from orchestrator.runner.gpu_lock import GpuBusy
    from orchestrator.search.parallel import WORKER_LOGS, WorkerPool, busy_gpus, study_state_of
    from orchestrator.search.study import Search

    gpus = list(args.parallel_gpus or ())
    if settings.storage.startswith("sqlite"):
        raise UserInputError("SQLite is not made for several processes writing one study (this folder's study is "
                             "in SQLite); resume it without --parallel-gpus, or start a new --out (its study "
                             "goes to a journal file) or use --storage postgresql://...", key="parallel-gpus")
    for _ in range(10):  # a worker of a command killed a moment ago may still be dying
        busy = busy_gpus(gpus)
        if not busy:
            break
        time.sleep(0.5)
    if busy:
        gpu, holder = next(iter(busy.items()))
        raise GpuBusy(f"GPU {gpu} is in use by pid {holder.get('pid', '?')} ({holder.get('purpose', 'unknown')}); "
                      "is this search already running? Pick free GPUs with --parallel-gpus")
    executor = _make_executor(args, settings, paths)
    search = Search(settings, executor)  # creates the study (or checks it, on a resume) before any worker
    search.write_results()
    _print_study(settings)

    def worker_argv(gpu: int) -> list[str]:
        argv = [sys.executable, "-m", "orchestrator", "search", "worker", "--storage", settings.storage,
                "--study-name", settings.study_name, OUTPUT_OPTION, str(settings.output), "--gpus", str(gpu),
                "--executor", args.executor, "--heartbeat", str(args.heartbeat), "--grace", str(args.grace),
                "--device", args.device or ("cpu" if args.allow_cpu else f"cuda:{gpu}")]
        if settings.references is not None:
            argv += ["--references", str(settings.references)]
        if args.evaluation_config is not None:
            argv += ["--evaluation-config", str(args.evaluation_config.resolve())]
        return [*argv, "--allow-cpu"] if args.allow_cpu else argv

    with progress_bar(unit="trial") as bar:
        on_progress = _search_progress(bar, settings)
        pool = WorkerPool(gpus, worker_argv, log_folder=settings.output / WORKER_LOGS,
                          study_state=lambda: study_state_of(search.study, settings.trials, search.schedule),
                          on_tick=lambda: on_progress(search.study.get_trials(deepcopy=False)), say=bar.console.print)
        outcome = pool.run()
    _print_summary(search.summary(), settings)
    for slot in outcome.broken:
        print(f"GPU {slot.gpu}: {slot.broken} (log {slot.log_path})", file=sys.stderr)
    if not outcome.done:
        print("the study is not finished: fix the cause above and run the same command again to resume",
              file=sys.stderr)
    return 0 if outcome.done and not outcome.broken else 1


def _make_executor(args: argparse.Namespace, settings: Any, paths: Any) -> Any:
    if args.executor == "simulated":
        from orchestrator.search.simulator import SimulatedExecutor
        from orchestrator.search.surfaces import QuadraticSurface

        seed = settings.seed if settings.seed is not None else _stored_surface_seed(settings)
        return SimulatedExecutor(surface=QuadraticSurface(seed=seed or 0))
    from orchestrator.search.kohya_executor import KohyaExecutor

    evaluation_config = None
    if args.evaluation_config is not None:
        from orchestrator.evaluate import load_evaluation_config

        evaluation_config = load_evaluation_config(args.evaluation_config)
    device = args.device or evaluator_device(allow_cpu=args.allow_cpu)
    return KohyaExecutor(paths=paths, references=settings.references, device=device, gpus=gpus_text(args.gpus),
                         allow_cpu=args.allow_cpu, evaluation_config=evaluation_config,
                         state_budget_bytes=settings.state_budget_bytes or 0)


def _stored_surface_seed(settings: Any) -> int | None:
    """A worker's simulated surface is the study's (its seed is part of the stored objective)."""
    if not getattr(settings, "storage_url", None):
        return None
    from orchestrator.common.errors import UserInputError
    from orchestrator.search.storage import study_attrs

    try:
        attrs = study_attrs(settings.storage_url, settings.study_name)
    except UserInputError:
        return None
    return ((attrs.get(OBJECTIVE_ATTR) or {}).get("scoring") or {}).get("surface_seed")


def evaluator_device(*, allow_cpu: bool) -> str:
    """The evaluator's default device: the GPU, unless the search was told it may run without one."""
    return "cpu" if allow_cpu else "cuda"
