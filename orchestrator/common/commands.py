"""Command-line verbs under a stage command, with an optional default verb.

``lora-pipeline search worker ...`` and ``lora-pipeline curate apply OUT`` are nested sub-parsers, so
``lora-pipeline search --help`` lists the verbs. A command may name a default verb that runs when the
next word is not a verb: ``curate FRAMES ...`` reads as ``curate run FRAMES ...``, and options may come
first (``search --base-config X``), as on a command without verbs. The output folder is ``--out``
everywhere (:func:`add_output_folder`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HELP_FLAGS = frozenset({"-h", "--help"})


class CommandParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that puts its default verb in front when the first word is not a verb."""

    default_verb: str | None = None

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        if self.default_verb is not None and args is not None:
            words = list(args)
            if not words or words[0] not in self._verb_names() | HELP_FLAGS:
                args = [self.default_verb, *words]
        return super().parse_known_args(args, namespace)

    def _verb_names(self) -> set[str]:
        return {name for action in self._actions if isinstance(action, argparse._SubParsersAction)
                for name in action.choices}


def add_verbs(command: argparse.ArgumentParser, *, dest: str, default: str | None = None,
              **options: Any) -> argparse._SubParsersAction:
    """Sub-parsers for ``command``'s verbs; ``default`` runs when no verb is given (needs a ``CommandParser``)."""
    if default is not None:
        if not isinstance(command, CommandParser):
            raise TypeError(f"{command.prog}: a default verb needs a CommandParser (the top-level parser's "
                            "parser_class)")
        command.default_verb = default
    return command.add_subparsers(dest=dest, metavar="VERB", required=True, **options)


def device_type(text: str) -> str:
    """An argparse ``type=`` for a torch device name (``cpu``, ``cuda``, ``cuda:1``, ``mps``), checked
    without importing torch: ``--device toaster`` is one line, not torch's traceback after the model loads."""
    import re

    if not re.fullmatch(r"cpu|mps|(cuda|xpu)(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"wants cpu, cuda, cuda:N or mps, got {text!r}")
    return text


def gpu_list(text: str) -> tuple[int, ...]:
    """The argparse ``type=`` of every GPU-list option (``--gpus 0,1``, ``--parallel-gpus``): the GPU numbers,
    parsed once, so that no handler splits the string; ``""`` is none given (the machine's). A bad value is
    refused by argparse naming the option."""
    try:
        numbers = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"wants GPU numbers separated by commas, got {text!r}") from None
    if (text.strip() and not numbers) or any(number < 0 for number in numbers) or len(set(numbers)) != len(numbers):
        raise argparse.ArgumentTypeError(f"wants distinct GPU numbers >= 0, got {text!r}")
    return numbers


def gpus_text(gpus: Sequence[int] | None) -> str | None:
    """``(0, 1)`` as the ``"0,1"`` a study records on its trials; None for none given."""
    return ",".join(str(gpu) for gpu in gpus) if gpus else None


OUTPUT_OPTION = "--out"  # the output folder of every command that writes one


def add_output_folder(parser: argparse.ArgumentParser, *, help: str, dest: str = "output",
                      old_names: tuple[str, ...] = (), **options: Any) -> None:
    """The output-folder option, named ``--out`` in every command; ``old_names`` (``--output``,
    ``--output-dir``) keep working but are left out of ``--help``."""
    parser.add_argument(OUTPUT_OPTION, dest=dest, type=Path, help=help, **options)
    for name in old_names:
        parser.add_argument(name, dest=dest, type=Path, help=argparse.SUPPRESS)
