"""Every number option of every command goes through the one number rule (``common/numbers.py``)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from orchestrator.cli import build_parser


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...],
                                                                                           argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:  # argparse keeps its sub-commands here; there is no public accessor
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, (*path, name))


def test_no_option_parses_a_number_with_bare_int_or_float() -> None:
    bare = [f"{' '.join(path)} {action.option_strings or action.dest}"
            for path, parser in _parsers(build_parser()) for action in parser._actions
            if action.type in (int, float)]
    assert not bare, f"use common.numbers.number_arg for: {bare}"


@pytest.mark.parametrize(("argv", "option"), [
    (["test-checkpoints", "RUN", "--base-model", "M", "--scale", "nan"], "--scale"),
    (["test-checkpoints", "RUN", "--base-model", "M", "--steps", "0"], "--steps"),
    (["test-checkpoints", "RUN", "--base-model", "M", "--seeds", "1", "-5"], "--seeds"),
    (["test-checkpoints", "RUN", "--base-model", "M", "--epoch", "-1"], "--epoch"),
    (["evaluate", "RUN", "--epoch", "inf"], "--epoch"),
    (["votes", "page", "RUN", "--base-model", "M", "--top", "0"], "--top"),
    (["votes", "page", "RUN", "--base-model", "M", "--max-comparisons", "-3"], "--max-comparisons"),
    (["queue", "cancel", "0"], "id"),
    (["quickstart", "--trials", "-1"], "--trials"),
    (["dataset", "prepare", "SRC", "--out", "DST", "--name", "luca", "--repeat", "0"], "--repeat"),
])
def test_a_number_outside_its_range_is_refused_naming_the_option(argv, option, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 2 and f"error: argument {option}" in capsys.readouterr().err
