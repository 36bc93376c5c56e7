"""`lora-pipeline`: one sub-command per stage. No logic lives here.

Each stage module listed in ``STAGE_MODULES`` exposes ``register(subparsers)``; it adds its
sub-commands and sets ``handler`` (a function taking the parsed namespace and returning an exit
code). Stage modules import their heavy dependencies (torch, open_clip, ...) inside the handlers so
that ``lora-pipeline --help`` stays instant.

A command with verbs nests them as sub-parsers (``common.commands.add_verbs``); one whose base takes
arguments of its own (``curate FRAMES`` beside ``curate apply OUT``) names a default verb for them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from orchestrator import __version__
from orchestrator.common.commands import CommandParser
from orchestrator.common.errors import PipelineError, describe_environment_error

STAGE_MODULES: tuple[str, ...] = (
    "orchestrator.kohya.cli",
    "orchestrator.doctor",
    "orchestrator.extract.cli",
    "orchestrator.crop.cli",
    "orchestrator.captions.cli",
    "orchestrator.evaluate.cli",
    "orchestrator.dataset.cli",
    "orchestrator.runner.cli",
    "orchestrator.search.cli",
    "orchestrator.queue.cli",
    "orchestrator.project.cli",
    "orchestrator.quickstart.cli",
    "orchestrator.verdict.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lora-pipeline",
        description="Frames in, best character LoRA out: curate, caption, train with kohya sd-scripts, "
        "evaluate, search.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for module_name in STAGE_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the outside world failed: one line, not a traceback
        message = describe_environment_error(error)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 1
