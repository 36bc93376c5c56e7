"""`lora-pipeline train | monitor | stop | watch`."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

from orchestrator.common.commands import gpu_list
from orchestrator.common.errors import UserInputError
from orchestrator.common.numbers import number_arg
from orchestrator.config.paths import add_location_arguments, paths_from_args

DEFAULT_STALL_MINUTES = 30.0
WAIT_POLL_SECONDS = 0.25  # --wait returns at most this long after the trainer has ended


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="pre-flight, then train a LoRA with sd-scripts in tmux")
    train.add_argument("config", help="preset name in configs/training/ or a preset file")
    train.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE", default=[],
                       help="override a kohya argument (network_dim=128) or dataset key (dataset.num_repeats=5)")
    train.add_argument("--out", type=Path, help="run folder (default: outputs/<output_name>)")
    train.add_argument("--session", help="tmux session name (default: the output name, made unique)")
    train.add_argument("--gpus", type=gpu_list, help="GPU numbers, e.g. 0 or 0,1 (several: accelerate launch)")
    mode = train.add_mutually_exclusive_group()
    mode.add_argument("--wait", action="store_true", help="follow the run here until it ends")
    mode.add_argument("--attach", action="store_true", help="attach to the tmux session after starting")
    train.add_argument("--dry-run", action="store_true", help="print the rendered files and argv; start nothing")
    train.add_argument("--resume", action="store_true", help="continue from the newest *-state folder")
    train.add_argument("--overwrite", action="store_true",
                       help="train again in a run folder that holds a finished run, replacing its checkpoints "
                            "(without it, that is refused)")
    train.add_argument("--retry-oom", action="store_true",
                       help="on CUDA OOM relaunch once with half the batch and twice the accumulation")
    train.add_argument("--allow-cpu", action="store_true", help="run without a GPU (slow; for tests)")
    train.add_argument("--min-free-vram", type=number_arg(low=0), metavar="GIB",
                       help="GiB of free GPU memory the run needs, instead of the preset's min_vram_gb "
                            "(0 skips the VRAM check)")
    _add_follow_options(train)
    add_location_arguments(train)
    train.set_defaults(handler=_train)

    monitor = subparsers.add_parser("monitor", help="live screen of a run: progress, loss, ETA, GPU, CPU")
    monitor.add_argument("run_dir", nargs="?", type=Path, help="the run folder (holds run.json)")
    monitor.add_argument("--session", help="find the run by its tmux session name instead")
    monitor.add_argument("--once", action="store_true", help="print one snapshot and exit (for scripts)")
    monitor.add_argument("--interval", type=number_arg(low=0, above_low=True), default=2.0, help="seconds between redraws")
    monitor.set_defaults(handler=_monitor)

    stop = subparsers.add_parser("stop", help="interrupt a run gracefully; kill it after a timeout")
    stop.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run folder (holds run.json)")
    stop.add_argument("--timeout", type=number_arg(low=0), default=120.0, help="seconds to wait before killing")
    stop.set_defaults(handler=_stop)

    watch = subparsers.add_parser("watch", help="re-attach to a run (after the orchestrator died) and "
                                                "complete its run.json")
    watch.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run folder (holds run.json)")
    watch.add_argument("--retry-oom", action="store_true",
                       help="on CUDA OOM relaunch once with half the batch and twice the accumulation")
    _add_follow_options(watch)
    watch.set_defaults(handler=_watch)


def _add_follow_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stall-minutes", type=number_arg(low=0), default=DEFAULT_STALL_MINUTES,
                        help="stop and fail a run that prints nothing for this long (0: never)")
    parser.add_argument("--keep-going-on-nan", action="store_true",
                        help="do not stop a run whose loss became NaN/inf")


def _configure(handle, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    handle.stall_seconds = args.stall_minutes * 60 if args.stall_minutes > 0 else None
    handle.stop_on_nan = not args.keep_going_on_nan


def _train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from orchestrator.config.overrides import parse_set_overrides
    from orchestrator.kohya.render import render_run
    from orchestrator.runner.launch import follow_with_retry, run_preflight, start_training

    paths = paths_from_args(args)
    if args.session is not None:  # refused before a run folder is written, not when tmux starts
        from orchestrator.runner.tmux import check_session_name

        check_session_name(args.session)
    rendered = render_run(args.config, overrides=parse_set_overrides(args.overrides), paths=paths,
                          run_dir=args.out, write=False)
    if args.min_free_vram is not None:
        if args.min_free_vram < 0:
            raise UserInputError(f"must be 0 or more GiB, got {args.min_free_vram:g}", key="min-free-vram")
        rendered = replace(rendered, min_vram_gb=args.min_free_vram)
    for warning in rendered.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    # Every check before anything is written: a refused run leaves an existing run folder as it was.
    report = run_preflight(rendered, paths=paths, gpus=args.gpus, resume=args.resume, allow_cpu=args.allow_cpu)
    for line in report.warnings:
        print(f"warning: {line}", file=sys.stderr)
    for problem in report.problems:
        print(f"pre-flight: {problem}", file=sys.stderr)
    if args.dry_run:
        _dry_run(rendered, paths, args)
        return 0 if report.ok else 1
    if not report.ok:
        return 1
    if not (args.resume or args.overwrite):
        _refuse_replacing_a_finished_run(rendered.run_dir)
    handle = start_training(rendered, paths=paths, session_name=args.session, gpus=args.gpus,
                            resume=args.resume, allow_cpu=args.allow_cpu, run_checks=False, write_config=True)
    record = handle.record
    _configure(handle, args)
    print(f"started {record.output_name} in tmux session {record.tmux_session}")
    print(f"  run folder  {rendered.run_dir}")
    print(f"  log         {record.log_path}")
    print(f"  attach      {_attach_hint(record.tmux_session, record.tmux_socket)}")
    print(f"  monitor     lora-pipeline monitor {shlex.quote(str(rendered.run_dir))}")
    print(f"  stop        lora-pipeline stop {shlex.quote(str(rendered.run_dir))}")
    if args.wait:
        return _report(follow_with_retry(handle, retry_oom=args.retry_oom, on_event=_printer(),
                                         poll_seconds=WAIT_POLL_SECONDS))
    _spawn_watcher(rendered.run_dir, args, paths.root)
    if args.attach:
        socket = ["-L", record.tmux_socket] if record.tmux_socket else []
        os.execvp("tmux", ["tmux", *socket, "attach", "-t", record.tmux_session or ""])
    return 0


def _refuse_replacing_a_finished_run(run_dir: Path) -> None:
    """A finished run's checkpoints are an earlier command's output: replaced only when asked."""
    from orchestrator.runner.record import load_run_record

    try:
        record = load_run_record(run_dir)
    except UserInputError:
        return  # no run here (or one that never got going): nothing finished to lose
    if record.status == "succeeded":
        final = record.checkpoints.get(max(record.checkpoints, key=int)) if record.checkpoints else None
        raise UserInputError(f"holds a finished run{f' (final checkpoint {final})' if final else ''}; training "
                             "again would replace its checkpoints and samples", path=run_dir, key="overwrite",
                             hint="pass --overwrite to train over it, --resume to continue it, or choose "
                                  "another --out")


def _attach_hint(session: str | None, socket: str | None) -> str:
    return shlex.join(["tmux", *(["-L", socket] if socket else []), "attach", "-t", session or ""])


def _dry_run(rendered, paths, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    from orchestrator.common.tomlfile import dumps_toml
    from orchestrator.kohya.command import build_training_command, newest_state_dir

    state = newest_state_dir(rendered.run_dir, rendered.output_name) if args.resume else None
    command = build_training_command(trainer_python=paths.trainer_python, sd_scripts=paths.sd_scripts,
                                     script_name=rendered.script_name, config_file=rendered.config_file,
                                     gpus=args.gpus or None, resume_state=state)
    print(f"# {rendered.config_file} (not written: --dry-run)")
    print(dumps_toml(rendered.sections))
    print(f"# {rendered.dataset_config_file} (not written: --dry-run)")
    print(dumps_toml(rendered.dataset))
    print(f"# cwd: {command.cwd}")
    print(f"# env: {' '.join(f'{k}={v}' for k, v in command.env.items())}")
    print("# argv:")
    for item in command.argv:
        print(f"#   {item!r}")
    print(shlex.join(command.argv))


def _printer():  # type: ignore[no-untyped-def]
    from orchestrator.kohya.log_grammar import CheckpointSaved, EpochStarted, Failure, Finished, StepProgress

    def on_event(event, record) -> None:  # type: ignore[no-untyped-def]
        if isinstance(event, EpochStarted):
            print(f"epoch {event.epoch}/{event.total_epochs}", flush=True)
        elif isinstance(event, CheckpointSaved):
            print(f"checkpoint: {event.path}", flush=True)
        elif isinstance(event, Failure):
            print(f"failure ({event.cause}): {event.message}", flush=True)
        elif isinstance(event, Finished):
            print("model saved.", flush=True)
        elif isinstance(event, StepProgress) and sys.stdout.isatty():
            print(f"\rstep {event.step + record.step_offset}/{event.total_steps + record.step_offset}  "
                  f"loss {event.avr_loss}", end="", flush=True)

    return on_event


def _report(record) -> int:  # type: ignore[no-untyped-def]
    from orchestrator.runner.outcome import failure_advice

    if record.status == "succeeded":
        final = record.checkpoints.get(max(record.checkpoints, key=int)) if record.checkpoints else "?"
        print(f"succeeded: {final}")
        return 0
    if record.status == "stopped":
        print("stopped")
        return 1
    failure = record.failure or {}
    print(f"{record.status}: {failure.get('cause', '?')}: {failure.get('message', '')}", file=sys.stderr)
    if advice := failure_advice(failure):
        print(f"advice: {advice}", file=sys.stderr)
    print(f"log: {record.log_path}", file=sys.stderr)
    return 1


def _spawn_watcher(run_dir: Path, args: argparse.Namespace, root: Path) -> None:
    """A detached ``lora-pipeline watch`` keeps run.json complete after this command returns."""
    from orchestrator.runner.files import RunFiles

    argv = [sys.executable, "-m", "orchestrator", "watch", str(run_dir), "--stall-minutes",
            str(args.stall_minutes)]
    argv += ["--retry-oom"] if args.retry_oom else []
    argv += ["--keep-going-on-nan"] if args.keep_going_on_nan else []
    log_file = RunFiles(run_dir).folder / "watch.log"
    with open(log_file, "ab") as output:
        subprocess.Popen(argv, cwd=root, stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                         start_new_session=True)


def _run_dir_of(args: argparse.Namespace) -> Path:
    from orchestrator.common.errors import UserInputError
    from orchestrator.config.paths import load_paths
    from orchestrator.runner.monitor import find_run_by_session

    if args.run_dir is not None:
        return args.run_dir
    if not args.session:
        raise UserInputError("give a run folder or --session NAME")
    found = find_run_by_session(load_paths().output_root, args.session)
    if found is None:
        raise UserInputError(f"no run under the output folder uses tmux session {args.session!r}")
    return found


def _monitor(args: argparse.Namespace) -> int:
    from orchestrator.runner.monitor import RunMonitor

    monitor = RunMonitor(_run_dir_of(args))
    if args.once:
        print(monitor.snapshot())
        return 0
    monitor.live(args.interval)
    return 0


def _stop(args: argparse.Namespace) -> int:
    """0 only when this command stopped a running trainer; 1 when there was nothing to stop or the run
    ended otherwise (a script that stops a run must know whether it did)."""
    from orchestrator.runner.handle import stop_run
    from orchestrator.runner.record import load_run_record

    before = load_run_record(args.run_dir)
    if not before.is_active:
        print(f"{before.output_name}: nothing to stop: the run already ended ({before.status})", file=sys.stderr)
        return 1
    from orchestrator.runner.files import RunFiles

    if RunFiles(args.run_dir).trainer_gone():
        record = stop_run(args.run_dir, timeout=args.timeout)  # concludes the record, stops nothing
        print(f"{record.output_name}: nothing to stop: its trainer had already exited; the run is recorded as "
              f"{record.status}", file=sys.stderr)
        return 1
    record = stop_run(args.run_dir, timeout=args.timeout)
    print(f"{record.output_name}: {record.status}")
    return 0 if record.status == "stopped" else 1


def _watch(args: argparse.Namespace) -> int:
    from orchestrator.runner.handle import adopt_run
    from orchestrator.runner.launch import follow_with_retry
    from orchestrator.runner.record import load_run_record

    handle = adopt_run(args.run_dir)
    if handle is None:
        return _report(load_run_record(args.run_dir))
    _configure(handle, args)
    return _report(follow_with_retry(handle, retry_oom=args.retry_oom, on_event=_printer()))
