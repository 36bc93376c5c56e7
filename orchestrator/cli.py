"""`lora-pipeline`: one sub-command per stage. No logic lives here.

Each stage module listed in ``STAGE_MODULES`` exposes ``register(subparsers)``; it adds its
sub-commands and sets ``handler`` (a function taking the parsed namespace and returning an exit
code). Stage modules import their heavy dependencies (torch, open_clip, ...) inside the handlers so
that ``lora-pipeline --help`` stays instant.

A command whose base takes a positional argument as well as sub-verbs (``curate FRAMES`` and
``curate apply OUT``) registers the verb as one name with a space, ``"curate apply"``; ``main``
joins the two words before parsing.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from orchestrator import __version__
from orchestrator.common.errors import PipelineError

STAGE_MODULES: tuple[str, ...] = (
    "orchestrator.config.cli",
    "orchestrator.doctor",
    "orchestrator.captions.cli",
    "orchestrator.evaluate.cli",
    "orchestrator.dataset.cli",
    "orchestrator.runner.cli",
    "orchestrator.search.cli",
    "orchestrator.quickstart.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lora-pipeline",
        description="Frames in, best character LoRA out: curate, caption, train with kohya sd-scripts, "
        "evaluate, search.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in STAGE_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def _join_compound_command(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    subparsers = next(
        (a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None
    )
    if subparsers is None or len(argv) < 2:
        return argv
    for index, word in enumerate(argv[:-1]):
        if word.startswith("-"):
            continue
        compound = f"{word} {argv[index + 1]}"
        if compound in subparsers.choices:
            return [*argv[:index], compound, *argv[index + 2 :]]
        break
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args_list = _join_compound_command(parser, list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(args_list)
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
