"""``lora-pipeline init | run | status``: a project folder from a film to the best LoRA."""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from orchestrator.project.schema import known_families

    init = subparsers.add_parser(
        "init", help="start a project: films, references and a character profile -> DIR/project.toml",
        description="Writes DIR/project.toml with every stage's options at their defaults, commented: the one "
        "file to edit. Then `lora-pipeline run DIR`.")
    init.add_argument("folder", type=Path, metavar="DIR", help="the project folder to create (or an empty one)")
    init.add_argument("--film", dest="films", action="append", required=True, type=Path, metavar="FILM",
                      help="a film of the character (repeat for several)")
    init.add_argument("--references", required=True, type=Path, metavar="REFS",
                      help="a folder of clean reference stills of the character")
    init.add_argument("--profile", required=True, type=Path, help="the character profile (YAML)")
    init.add_argument("--family", default="sd15", choices=known_families(), help="model family (default: %(default)s)")
    init.add_argument("--search", action="store_true", help="end with a hyperparameter search instead of one training")
    init.set_defaults(handler=_init)

    run = subparsers.add_parser(
        "run", help="run the project's stages that changed (skips the rest); continues after a crash",
        description="Runs extract, crop, curate, review, prepare, caption, train (or search), evaluate and the "
        "verdict page in order, each in its own folder under DIR, skipping every stage whose inputs and options "
        "did not change since it last succeeded. Stops where a person must decide, saying what to do; exit 3.")
    run.add_argument("folder", type=Path, metavar="DIR", help="the project folder (holds project.toml)")
    run.add_argument("--accept-automatic", action="store_true",
                     help="take curation's automatic keep/reject decisions instead of stopping for the review")
    run.add_argument("--detach", action="store_true", help="run in a tmux session (its name is printed) and return")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.set_defaults(handler=_run)

    status = subparsers.add_parser(
        "status", help="one screen: each stage's state, the counts, training/search progress, what to do next",
        description="Prints the project's state and writes the same as DIR/status.html.")
    status.add_argument("folder", type=Path, metavar="DIR", help="the project folder (holds project.toml)")
    status.set_defaults(handler=_status)


def _init(args: argparse.Namespace) -> int:
    from orchestrator.project.init import init_project

    settings = {"final": {"mode": "search"}} if args.search else None
    project = init_project(args.folder, films=args.films, references=args.references, profile=args.profile,
                           family=args.family, settings=settings)
    print(f"wrote {project.file}: every option with its default; edit it, then `lora-pipeline run {project.folder}`")
    return 0


def _run(args: argparse.Namespace) -> int:
    import logging

    from orchestrator.project.run import run_project
    from orchestrator.project.schema import load_project

    if args.detach:
        return _detach(load_project(args.folder).folder, args)
    logging.getLogger("libtmux").setLevel(logging.WARNING)
    result = run_project(args.folder, accept_automatic=args.accept_automatic, progress=not args.no_progress)
    if result.waiting:
        print(f"waiting for you: {result.waiting}")
        return 3
    from orchestrator.project.status import next_step

    print(f"next: {next_step(result.folder)}")
    return 0


def _detach(folder: Path, args: argparse.Namespace) -> int:
    from orchestrator.runner import tmux

    name = tmux.free_session_name(f"lp-run-{hashlib.sha256(str(folder).encode()).hexdigest()[:6]}")
    argv = [sys.executable, "-m", "orchestrator", "run", str(folder)]
    argv += ["--accept-automatic"] if args.accept_automatic else []
    tmux.start_session(name, argv, cwd=folder)
    print(f"running in tmux session {name}: `tmux attach -t {name}` to watch; `lora-pipeline status {folder}`")
    return 0


def _status(args: argparse.Namespace) -> int:
    from orchestrator.project.status import print_status, project_status, write_status_page

    status = project_status(args.folder)
    print_status(status)
    print(f"page: {write_status_page(status)}")
    return 0
