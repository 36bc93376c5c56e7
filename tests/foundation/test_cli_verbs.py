"""Commands with verbs are nested sub-parsers: `--help` lists the verbs, and every old command line parses."""

from __future__ import annotations

import argparse

import pytest

from orchestrator.cli import build_parser
from orchestrator.common.commands import CommandParser, add_verbs, gpu_list, gpus_text


def handler_of(argv: list[str]) -> str:
    return build_parser().parse_args(argv).handler.__name__


@pytest.mark.parametrize("argv, handler", [
    (["search", "--base-config", "luca", "--trials", "3"], "run_search_command"),
    (["search", "run", "--base-config", "luca"], "run_search_command"),
    (["search", "worker", "--storage", "postgresql://db/optuna"], "run_worker_command"),
    (["search", "status", "out", "--watch", "5"], "run_status_command"),
    (["search", "analyze", "out"], "run_analyze_command"),
    (["curate", "frames", "--references", "refs", "--out", "cur"], "_curate"),
    (["curate", "--references", "refs", "frames", "--out", "cur"], "_curate"),
    (["curate", "apply", "cur", "--decisions", "d.json"], "_apply"),
    (["config", "render", "luca"], "_render"),
    (["dataset", "validate", "data"], "_validate"),
])
def test_every_command_line_reaches_its_handler(argv, handler):
    assert handler_of(argv) == handler


def test_default_verb_keeps_arguments_of_the_command():
    args = build_parser().parse_args(["curate", "--references", "refs", "frames", "--out", "cur"])
    assert (str(args.frames_dir), str(args.references), str(args.out)) == ("frames", "refs", "cur")
    worker = build_parser().parse_args(["search", "worker", "--study-name", "b"])
    assert worker.study_name == "b" and worker.search_command == "worker"


@pytest.mark.parametrize("command, verbs", [("search", ["run", "worker", "status", "analyze"]),
                                            ("curate", ["run", "apply"])])
def test_help_of_a_command_lists_its_verbs(command, verbs, capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([command, "--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert all(f"    {verb} " in shown for verb in verbs), shown


def test_top_level_help_names_each_command_once(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    shown = capsys.readouterr().out
    assert "search worker" not in shown and "curate apply" not in shown


def test_a_default_verb_needs_the_command_parser():
    with pytest.raises(TypeError, match="CommandParser"):
        add_verbs(argparse.ArgumentParser(prog="plain"), dest="verb", default="run")
    assert isinstance(build_parser()._subparsers._group_actions[0].choices["search"], CommandParser)


def _all_parsers(parser: argparse.ArgumentParser, prog: str = "lora-pipeline"):
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                if child is not parser:
                    yield from _all_parsers(child, f"{prog} {name}")


def test_every_argument_of_every_command_says_what_it_is_for():
    missing = sorted({f"{prog}: {action.option_strings[0] if action.option_strings else action.dest}"
                      for prog, parser in _all_parsers(build_parser()) for action in parser._actions
                      if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
                      and action.help is None})
    assert missing == []


def test_every_gpu_list_option_is_parsed_once_into_a_tuple_of_numbers() -> None:
    assert gpu_list("0") == (0,) and gpu_list(" 1, 3 ") == (1, 3) and gpu_list("") == ()
    for bad in ("a,b", "-1", "0,0", ",", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            gpu_list(bad)
    assert gpus_text((0, 2)) == "0,2" and gpus_text(()) is None and gpus_text(None) is None
    for argv in (["train", "p", "--gpus", "0,1"], ["search", "run", "--base-config", "p", "--parallel-gpus", "0,1"],
                 ["search", "worker", "--gpus", "0,1"], ["queue", "run", "--gpus", "0,1"]):
        args = build_parser().parse_args(argv)
        assert (args.gpus if "--gpus" in argv else args.parallel_gpus) == (0, 1), argv


# What a command line costs before its handler runs: every command builds the whole parser, so a stage's
# CLI module (or its package's __init__) that imports one of these makes `run DIR` with nothing to do slow.
HEAVY_LIBRARIES = ("scipy", "optuna", "torch", "transformers", "open_clip", "cv2", "matplotlib", "sqlalchemy")


def test_building_the_command_line_loads_no_heavy_library() -> None:
    import subprocess
    import sys

    probe = ("import sys; from orchestrator.cli import build_parser; build_parser(); "
             f"print(' '.join(m for m in {HEAVY_LIBRARIES!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
