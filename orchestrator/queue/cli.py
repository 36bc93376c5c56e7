"""`lora-pipeline queue add | list | run | cancel`: a queue of trainings and searches for free GPUs."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from orchestrator.common.commands import add_verbs, gpu_list
from orchestrator.common.numbers import number_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    command = subparsers.add_parser(
        "queue", help="a queue of training jobs (trainings and searches) that free GPUs take in turn",
        description="Jobs persist in one JSON file (default: outputs/queue/queue.json) across reboots; "
                    "`queue run` gives each free GPU the next job, and a failed job does not stop the queue.")
    verbs = add_verbs(command, dest="queue_command")

    add = verbs.add_parser("add", help="add a training (or, with --search, a search) of a preset to the queue")
    add.add_argument("preset", help="preset name in configs/training/ or a preset file")
    kind = add.add_mutually_exclusive_group()  # a search takes its parameters from its space, not --set
    kind.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE", default=[],
                     help="override a kohya argument or dataset key, as for `train` (trainings only)")
    kind.add_argument("--search", action="store_true",
                     help="the job is `search run --base-config PRESET` instead of `train PRESET`")
    add.add_argument("--gpu-count", type=number_arg(int, low=1), default=1,
                     help="GPUs the job takes: a training on several uses accelerate, a search runs one "
                          "trial per GPU (default: %(default)s)")
    add.add_argument("--args", default="", metavar="'OPTIONS'",
                     help="more options of the job's command as one string, e.g. --args='--references "
                          "data/refs --trials 20' for a search (with '=' when it is one option; not --gpus, "
                          "--out, --output or --session: the queue sets them)")
    _add_queue_argument(add)
    add.set_defaults(handler=run_add_command)

    listing = verbs.add_parser("list", help="every job with its state, GPUs, folder and reason")
    _add_queue_argument(listing)
    listing.set_defaults(handler=run_list_command)

    run = verbs.add_parser("run", help="work the queue: each free GPU of --gpus takes the next job")
    run.add_argument("--gpus", required=True, type=gpu_list, help="the GPUs jobs may use, e.g. 0,1")
    run.add_argument("--keep-waiting", action="store_true",
                     help="wait for new jobs when the queue is empty instead of returning")
    run.add_argument("--poll", type=number_arg(low=0, above_low=True), default=2.0, help="seconds between looks at the queue")
    _add_queue_argument(run)
    run.set_defaults(handler=run_run_command)

    cancel = verbs.add_parser("cancel", help="cancel a queued job, or stop a running one (its trainers too)")
    cancel.add_argument("id", type=number_arg(int, low=1), help="the job's number (see `queue list`)")
    _add_queue_argument(cancel)
    cancel.set_defaults(handler=run_cancel_command)


def _add_queue_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue", type=Path, help="the queue file (default: OUTPUT_ROOT/queue/queue.json)")


def _store(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from orchestrator.config.paths import load_paths
    from orchestrator.queue import QUEUE_FILE, QueueStore

    path = args.queue or load_paths().output_root / "queue" / QUEUE_FILE
    return QueueStore(path.resolve())


_QUEUE_SETS = ("--gpus", "--parallel-gpus", "--out", "--output", "--base-config", "--wait", "--session")


def run_add_command(args: argparse.Namespace) -> int:
    from orchestrator.common.errors import UserInputError
    from orchestrator.queue._runner import job_argv
    from orchestrator.runner.record import now_iso

    try:
        options = shlex.split(args.args)
    except ValueError as error:  # an unclosed quote
        raise UserInputError(f"cannot split {args.args!r} into options ({error})", key="args") from None
    if clash := [option for option in options if option.split("=", 1)[0] in _QUEUE_SETS]:
        raise UserInputError(f"the queue sets {clash[0].split('=', 1)[0]} itself", key="args")
    kind = "search" if args.search else "train"
    store = _store(args)
    folder_root = store.path.parent
    _check_job_preset(args.preset, args.overrides, folder_root)
    stem = Path(args.preset).stem

    with store.edit() as state:
        job = state.add(kind, args.preset, overrides=args.overrides, options=options, gpu_count=args.gpu_count,
                        now=now_iso(), folder_for=lambda n: str(folder_root / f"job_{n:03d}_{stem}_{kind}"),
                        log_for=lambda n: str(folder_root / "logs" / f"job_{n:03d}.log"))
        job.gpus = list(range(job.gpu_count))
        _check_parses(job_argv(job)[3:])  # refuse options the command would refuse, before it is queued
        job.gpus = []
    print(f"job {job.id}: {kind} {args.preset} queued ({job.gpu_count} GPU); folder {job.folder}")
    return 0


def _check_job_preset(preset: str, overrides: list[str], folder_root: Path) -> None:
    """The preset and its --set overrides render and check as `config render` would, now: a job that
    names a missing preset or a misspelt key fails at `queue add`, not hours later at its turn. Paths are
    not checked (the dataset may be made before the job's turn)."""
    from orchestrator.common.errors import UserInputError
    from orchestrator.config.overrides import parse_set_overrides
    from orchestrator.config.paths import load_paths
    from orchestrator.kohya.check import validate_rendered
    from orchestrator.kohya.render import render_run
    from orchestrator.kohya.validate import errors

    rendered = render_run(preset, overrides=parse_set_overrides(overrides), paths=load_paths(),
                          run_dir=folder_root / "job_check", write=False)
    problems = errors(validate_rendered(rendered, paths_must_exist=False))
    if problems:
        raise UserInputError(f"the job cannot be trained: {problems[0].message}", path=problems[0].file,
                             key=problems[0].key)


def _check_parses(argv: list[str]) -> None:
    from orchestrator.cli import build_parser
    from orchestrator.common.errors import UserInputError

    try:
        build_parser().parse_args(argv)
    except SystemExit:
        raise UserInputError(f"the job's command would not parse: {shlex.join(argv)}", key="args") from None


def run_list_command(args: argparse.Namespace) -> int:
    state = _store(args).read()
    if not state.jobs:
        print("the queue is empty")
        return 0
    print(f"{'id':>3}  {'kind':<6} {'state':<10} {'gpus':<6} {'tries':>5}  preset / folder / reason")
    for job in state.jobs:
        gpus = ",".join(map(str, job.gpus)) or "-"
        extra = f"   {job.reason}" if job.reason else ""
        cancelling = " (cancelling)" if job.cancel_requested and job.state == "running" else ""
        print(f"{job.id:>3}  {job.kind:<6} {job.state + cancelling:<10} {gpus:<6} {job.attempts:>5}  {job.preset}  "
              f"{job.folder}{extra}")
    return 0


def run_run_command(args: argparse.Namespace) -> int:
    from orchestrator.queue._runner import QueueRunner

    summary = QueueRunner(_store(args), list(args.gpus), poll_seconds=args.poll,
                          keep_waiting=args.keep_waiting).run()
    print(f"{len(summary.finished)} job(s) ended here: {summary.count('succeeded')} succeeded, "
          f"{summary.count('failed')} failed, {summary.count('cancelled')} cancelled")
    return 0 if summary.count("failed") == 0 else 1


def run_cancel_command(args: argparse.Namespace) -> int:
    from orchestrator.runner.record import now_iso

    with _store(args).edit() as state:
        job = state.cancel(args.id, now=now_iso())
    print(f"job {job.id}: " + ("cancelled" if job.state == "cancelled" else "its runner stops it now"))
    return 0
