"""Class 1 of issue 29: a later command never destroys what an earlier one produced.

Each case builds an earlier command's output, runs a later command on it, and asserts: a refusal (non-zero
exit, one line naming the file or option, no traceback) or a correct result, no hang, and every earlier
output byte for byte unchanged (only the films a case names with ``--overwrite`` may be replaced). The rule
behind them: a command takes its lock before it writes anything, and never replaces an earlier command's
output unless asked.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.common.file_lock import FileLock
from orchestrator.runner.files import RunLock
from orchestrator.toy import generate_toy_film
from tests.foundation import test_hostile_inputs as table
from tests.foundation.test_hostile_inputs import PRESET, _run_main, _snapshot
from tests.runner.conftest import FAKE_SD_SCRIPTS, make_dataset

project = table.project


@pytest.fixture(scope="session")
def film(tmp_path_factory) -> Path:
    return Path(generate_toy_film(tmp_path_factory.mktemp("lost_film")).video)


def _films(root: Path, film: Path) -> None:
    for folder in ("a", "b", "c"):
        (root / folder).mkdir()
    shutil.copy(film, root / "a" / "film.avi")
    shutil.copy(film, root / "b" / "film.avi")
    shutil.copy(film, root / "c" / "other.avi")


def _extract(root: Path, *videos: str, extra: tuple[str, ...] = ()) -> int:
    return main(["extract", *(str(root / v) for v in videos), "--out", str(root / "X"), "--no-progress", *extra])


def _earlier(*videos: str, extra: tuple[str, ...] = ()) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        assert _extract(root, *videos, extra=extra) == 0
    return build


def _then(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        for step in steps:
            step(root)
    return build


def _write(relative: str, data: bytes) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    return build


def _touch(relative: str) -> Callable[[Path], None]:
    return lambda root: os.utime(root / relative, ns=(1_000_000_000, 1_000_000_000))


def _x(*videos: str, extra: tuple[str, ...] = ()) -> list[str]:
    return ["extract", *(f"{{tmp}}/{v}" for v in videos), "--out", "{tmp}/X", "--no-progress", *extra]


def _curate_argv(frames: str) -> list[str]:
    return ["curate", f"{{tmp}}/{frames}", "--references", "{tmp}/finished/references", "--out", "{tmp}/cur",
            "--clip-model", "tiny-clip", "--clip-weights", "random", "--cache-dir", "{tmp}/cache", "--no-progress"]


def _crop_argv(frames: str) -> list[str]:
    return ["crop", f"{{tmp}}/{frames}", "--references", "{tmp}/finished/references", "--out", "{tmp}/crops",
            "--clip-model", "tiny-clip", "--clip-weights", "random", "--cache-dir", "{tmp}/cache", "--no-progress"]


def _earlier_cli(argv: list[str]) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        assert main([a.replace("{tmp}", str(root)) for a in argv]) == 0
    return build


def _voted_page(root: Path) -> None:
    """A blind-comparison page of the top 2 checkpoints, and the votes a person exported beside it."""
    from tests.verdict.scored_run import make_scored_run, random_metric_rows

    run = make_scored_run(root / "scored", random_metric_rows(4, 3))
    assert main(["votes", "page", str(run), "--top", "2"]) == 0
    (run / "verdict" / "votes.json").write_text('{"votes": "a person\'s afternoon"}')


# name -> (earlier output, later command, text the refusal names (None: it succeeds), files it may replace)
CASES: dict[str, tuple[Callable[[Path], None], list[str], str | None, tuple[str, ...]]] = {
    "extract_other_film_same_stem": (_earlier("a/film.avi"), _x("b/film.avi"), None, ()),
    "extract_other_film_same_stem_then_first_again": (_earlier("a/film.avi", "b/film.avi"), _x("a/film.avi"),
                                                      None, ()),
    "extract_same_film_twice_in_one_call": (_earlier("a/film.avi"), _x("a/film.avi", "a/./film.avi"), None, ()),
    "extract_same_film_other_per_shot": (_earlier("a/film.avi"), _x("a/film.avi", extra=("--per-shot", "1")),
                                         "overwrite", ()),
    "extract_same_film_other_min_gap": (_earlier("a/film.avi"), _x("a/film.avi", extra=("--min-gap", "0.2")),
                                        "overwrite", ()),
    "extract_same_film_file_changed": (_then(_earlier("a/film.avi"), _touch("a/film.avi")), _x("a/film.avi"),
                                       "overwrite", ()),
    "extract_changed_film_among_new_ones": (_then(_earlier("a/film.avi"), _touch("a/film.avi")),
                                            _x("c/other.avi", "a/film.avi"), "overwrite", ()),
    "extract_record_damaged": (_then(_earlier("a/film.avi"), _write("X/.extract/film.json", b"\x00\xff{")),
                               _x("b/film.avi"), "film.json", ()),
    "extract_record_not_an_object": (_then(_earlier("a/film.avi"), _write("X/.extract/film.json", b"[1, 2]")),
                                     _x("a/film.avi"), "film.json", ()),
    "extract_overwrite_replaces_only_its_own_film": (_earlier("a/film.avi", "c/other.avi"),
                                                     _x("a/film.avi", extra=("--per-shot", "1", "--overwrite")),
                                                     None, ("X/film_*", "X/.extract/film.json")),
    "render_over_a_finished_run": (lambda root: None, ["config", "render", PRESET, "--out", "{tmp}/finished/run"],
                                   "overwrite", ()),
    "render_over_a_stopped_run": (_write("idle_run/luca-000001.safetensors", b"weights of epoch 1"),
                                  ["config", "render", PRESET, "--out", "{tmp}/idle_run"], "overwrite", ()),
    "curate_other_frames_into_a_curation": (_earlier_cli(_curate_argv("frames")), _curate_argv("finished/references"),
                                             "overwrite", ()),
    "crop_other_frames_into_a_crop_folder": (_earlier_cli(_crop_argv("frames")), _crop_argv("finished/references"),
                                             "overwrite", ()),
    "votes_page_of_other_checkpoints_over_votes": (_voted_page, ["votes", "page", "{tmp}/scored", "--top", "3"],
                                                   "overwrite", ()),
    "extract_into_a_crop_folder": (_write("X/summary.json", b'{"stage": "crop"}'), _x("a/film.avi"), "crop", ()),
}
BUSY = {  # the later command runs while the earlier one still holds its lock
    "extract_while_another_extract_runs": (_earlier("a/film.avi"), _x("b/film.avi"), ".extract.lock",
                                           lambda root: FileLock(root / "X" / ".extract.lock", holder="extract")),
    "train_over_a_finished_run": (
        lambda root: make_dataset(root / "data" / "10_luca"), ["train", PRESET, "--out", "{tmp}/finished/run",
                                                               "--allow-cpu", "--gpus", "0"],
        "overwrite", lambda root: nullcontext()),
    "train_while_another_train_holds_the_folder": (  # the winner of two racing trains has written its config
        _then(lambda root: make_dataset(root / "data" / "10_luca"),
              lambda root: shutil.copytree(root / "finished" / "run" / "config", root / "racing" / "config")),
        ["train", PRESET, "--out", "{tmp}/racing", "--allow-cpu", "--gpus", "0"],
        "another run", lambda root: RunLock(root / "racing")),
}


#: What every extract rebuilds from all its films' records; checked by content (earlier lines kept) instead.
AGGREGATES = ("X/manifest.jsonl", "X/dropped.jsonl", "X/summary.json")


def _kept(root: Path, before: dict[str, str], manifest: set[str], may_replace: tuple[str, ...]) -> bool:
    """Every earlier file is there byte for byte, except those ``may_replace`` (globs) names, and every
    earlier manifest line is still in the manifest."""
    after = _snapshot(root)
    exempt = (*may_replace, *AGGREGATES)
    files_kept = all(after.get(name) == digest for name, digest in before.items()
                     if not any(Path(name).match(glob) for glob in exempt) and not name.endswith(".lock"))
    return files_kept and manifest <= _manifest_lines(root)


def _manifest_lines(root: Path) -> set[str]:
    path = root / AGGREGATES[0]
    return set(path.read_text().splitlines()) if path.is_file() else set()


def _check(root: Path, argv: list[str], named: str | None, may_replace: tuple[str, ...], capsys) -> None:
    before, manifest = _snapshot(root), _manifest_lines(root)
    if may_replace:  # the film --overwrite replaces: its own manifest lines go with it
        manifest = {line for line in manifest if '"file": "film_' not in line}
    code = _run_main([a.replace("{tmp}", str(root)) for a in argv])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "Traceback" not in output
    if named is None:
        assert code == 0, output
    else:
        assert code != 0, output
        assert named in output, output
    if named is not None:  # a refusal changes nothing at all
        unlocked = {k: v for k, v in before.items() if not k.endswith(".lock")}
        assert {k: v for k, v in _snapshot(root).items() if not k.endswith(".lock")} == unlocked
    assert _kept(root, before, manifest, may_replace)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_later_command_keeps_what_an_earlier_one_made(name, project, film, capsys):
    earlier, argv, named, may_replace = CASES[name]
    _films(project, film)
    earlier(project)
    capsys.readouterr()
    _check(project, argv, named, may_replace, capsys)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", sorted(BUSY))
def test_a_command_refused_by_a_busy_lock_writes_nothing(name, project, film, capsys, monkeypatch):
    monkeypatch.setenv("LORA_PIPELINE_SD_SCRIPTS", str(FAKE_SD_SCRIPTS))
    monkeypatch.setenv("LORA_PIPELINE_TRAINER_PYTHON", sys.executable)
    earlier, argv, named, hold = BUSY[name]
    _films(project, film)
    earlier(project)
    capsys.readouterr()
    with hold(project):
        _check(project, argv, named, (), capsys)


def test_a_second_film_of_the_same_name_gets_frames_of_its_own(project, film, capsys):
    _films(project, film)
    assert _extract(project, "a/film.avi") == 0
    first = sorted(p.name for p in (project / "X").glob("*.png"))
    assert _extract(project, "b/film.avi") == 0
    both = sorted(p.name for p in (project / "X").glob("*.png"))
    assert set(first) < set(both) and len(both) == 2 * len(first)
    assert _extract(project, "a/film.avi", "b/film.avi") == 0
    assert "skipped" in capsys.readouterr().out
    assert sorted(p.name for p in (project / "X").glob("*.png")) == both


def test_the_table_has_at_least_eight_cases():
    assert len(CASES) + len(BUSY) >= 8
