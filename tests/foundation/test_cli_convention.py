"""One command-line convention: the output folder is ``--out`` in every command; old names still parse."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli import build_parser
from orchestrator.common.commands import OUTPUT_OPTION


@pytest.mark.parametrize(("argv", "dest", "old"), [
    (["search", "run", "--base-config", "P"], "output", "--output"),
    (["search", "worker", "--storage", "sqlite:///x.db"], "output", "--output"),
    (["caption", "F", "--profile", "C"], "output_dir", "--output-dir"),
])
def test_the_output_folder_is_out_and_the_old_name_is_a_hidden_alias(argv, dest, old, capsys) -> None:
    parser = build_parser()
    assert getattr(parser.parse_args([*argv, OUTPUT_OPTION, "o"]), dest) == Path("o")
    assert getattr(parser.parse_args([*argv, old, "o"]), dest) == Path("o")
    with pytest.raises(SystemExit):
        parser.parse_args([*(argv[:2] if argv[0] == "search" else argv[:1]), "--help"])
    shown = capsys.readouterr().out
    assert OUTPUT_OPTION in shown and old not in shown
