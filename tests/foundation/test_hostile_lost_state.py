"""Class 2 of issue 29: a damaged state file never breaks a command for good without naming it.

The rule (``common/state_files.py``): every file we read back is checked when it is opened. A cache is
rebuilt with a warning naming it, the damaged file set aside byte for byte; a file that holds a person's
work (a queue, a run record, scores) is refused naming the file and what to do; a byte-order mark is not
damage. Each case asserts that, no traceback, no hang, and every earlier file kept (a cache only moved).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.common.state_files import DAMAGED_SUFFIX
from tests.foundation import test_hostile_inputs as table
from tests.foundation.test_hostile_inputs import PRESET, TINY_CLIP, _run_main, _snapshot

project = table.project
BOM = b"\xef\xbb\xbf"
NOISE = bytes(range(256)) * 8


def _noise(relative: str) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(NOISE)
    return build


def _torn_database(relative: str) -> Callable[[Path], None]:
    """A real SQLite file cut in half, as a full disk or a power cut leaves it."""
    def build(root: Path) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE filler (x BLOB)")
        db.executemany("INSERT INTO filler VALUES (?)", [(bytes(2000),) for _ in range(50)])
        db.commit()
        db.close()
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    return build


def _with_bom(relative: str, source: str | None = None) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        origin = Path(source) if source else root / relative
        (root / relative).write_bytes(BOM + origin.read_bytes())
    return build


def _fresh_run(root: Path) -> None:
    from tests.evaluate.fake_run import make_run

    make_run(root / "fresh")


def _then(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        for step in steps:
            step(root)
    return build


def _evaluate(*extra: str) -> list[str]:
    return ["evaluate", "{tmp}/fresh/run", "--references", "{tmp}/fresh/references", *TINY_CLIP,
            "--cache-dir", "{tmp}/cache", *extra]


def _curate() -> list[str]:
    return ["curate", "{tmp}/fresh/references", "--references", "{tmp}/fresh/references", "--out",
            "{tmp}/curated", "--cache-dir", "{tmp}/cache", "--clip-model", "tiny-clip", "--clip-weights",
            "random"]


def _queue_file(text: bytes) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        (root / "q").mkdir(exist_ok=True)
        (root / "q" / "queue.json").write_bytes(text)
    return build


_QUEUE = json.dumps({"format": 1, "next_id": 2, "jobs": [{"id": 1, "kind": "train", "preset": PRESET}]}).encode()

# name -> (damage, command, the file the warning or refusal names, rebuilt: the damaged file is a cache)
CASES: dict[str, tuple[Callable[[Path], None], list[str], str, bool | None]] = {
    # caches: rebuilt with a warning, the damaged file set aside
    "evaluate_embedding_cache_random_bytes": (_then(_fresh_run, _noise("cache/embeddings.sqlite")), _evaluate(),
                                              "embeddings.sqlite", True),
    "evaluate_embedding_cache_torn": (_then(_fresh_run, _torn_database("cache/embeddings.sqlite")), _evaluate(),
                                      "embeddings.sqlite", True),
    "evaluate_measures_cache_random_bytes": (_then(_fresh_run, _noise("cache/measures.sqlite")), _evaluate(),
                                             "measures.sqlite", True),
    "evaluate_measures_cache_torn": (_then(_fresh_run, _torn_database("cache/measures.sqlite")), _evaluate(),
                                     "measures.sqlite", True),
    "curate_embedding_cache_random_bytes": (_then(_fresh_run, _noise("cache/embeddings.sqlite")), _curate(),
                                            "embeddings.sqlite", True),
    "curate_analysis_cache_random_bytes": (_then(_fresh_run, _noise("cache/analysis.sqlite")), _curate(),
                                           "analysis.sqlite", True),
    "curate_analysis_cache_torn": (_then(_fresh_run, _torn_database("cache/analysis.sqlite")), _curate(),
                                   "analysis.sqlite", True),
    # files holding a person's work: refused naming the file
    "queue_list_random_bytes": (_queue_file(NOISE), ["queue", "list", "--queue", "{tmp}/q/queue.json"],
                                "queue.json", False),
    "queue_list_torn": (_queue_file(_QUEUE[: len(_QUEUE) // 2]), ["queue", "list", "--queue", "{tmp}/q/queue.json"],
                        "queue.json", False),
    "queue_run_random_bytes": (_queue_file(NOISE), ["queue", "run", "--gpus", "0", "--queue", "{tmp}/q/queue.json"],
                               "queue.json", False),
    "monitor_run_record_random_bytes": (_noise("finished/run/run.json"), ["monitor", "{tmp}/finished/run", "--once"],
                                        "run.json", False),
    "evaluate_epoch_over_random_scores": (_then(_fresh_run, _noise("fresh/run/evaluation/scores.json")),
                                          _evaluate("--epoch", "2"), "scores.json", False),
    # a byte-order mark is not damage: read past
    "queue_list_with_bom": (_queue_file(BOM + _QUEUE), ["queue", "list", "--queue", "{tmp}/q/queue.json"],
                            "queue.json", None),
    "render_preset_with_bom": (_with_bom("bom.toml", f"configs/training/{PRESET}.toml"),
                               ["config", "render", "{tmp}/bom.toml", "--out", "{tmp}/run"], "bom.toml", None),
    "monitor_run_record_with_bom": (_with_bom("idle_run/run.json"), ["monitor", "{tmp}/idle_run", "--once"],
                                    "run.json", None),
}


def _set_aside(root: Path, name: str) -> list[Path]:
    return sorted(root.rglob(f"{name}{DAMAGED_SUFFIX}*[0-9]"))


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_damaged_state_file_is_rebuilt_or_refused_by_name(name, project, capsys, caplog):
    caplog.set_level(logging.WARNING)  # the warning is the behaviour asserted, whatever level another test left
    damage, argv, named, rebuilt = CASES[name]
    damage(project)
    before = _snapshot(project)
    code = _run_main([a.replace("{tmp}", str(project)) for a in argv])
    captured = capsys.readouterr()
    output = captured.out + captured.err + caplog.text
    assert "Traceback" not in output
    after = _snapshot(project)
    if rebuilt is None:  # read past: the command does its work
        assert code == 0, output
    elif rebuilt:
        assert code == 0, output
        assert named in output and "set aside" in output, output
        damaged = next(k for k in before if k.endswith(named))
        aside = _set_aside(project, named)
        assert len(aside) == 1 and _snapshot(aside[0].parent)[aside[0].name] == before[damaged]
        before = {k: v for k, v in before.items() if k != damaged}
    else:
        assert code != 0, output
        assert named in output, output
    kept = {k: v for k, v in after.items() if k in before and not k.endswith(".lock")}
    assert kept == {k: v for k, v in before.items() if not k.endswith(".lock")}


def test_the_table_has_at_least_eight_cases():
    assert len(CASES) >= 8


@pytest.mark.timeout(120)
def test_a_torn_last_journal_line_is_repaired_not_appended_to(tmp_path):
    """The --parallel-gpus journal whose last line a power cut cut in half: the next resume repairs it
    (the torn line kept aside) instead of appending after it and failing on every later resume."""
    import optuna

    from orchestrator.search.storage import journal_url, make_storage

    path = tmp_path / "optuna_journal.log"
    url = journal_url(path)
    study = optuna.create_study(study_name="s", storage=make_storage(url))
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    whole = path.read_bytes()
    torn = whole.splitlines(keepends=True)[-1][:20]
    path.write_bytes(whole + torn)
    resumed = optuna.load_study(study_name="s", storage=make_storage(url))
    resumed.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    again = optuna.load_study(study_name="s", storage=make_storage(url))
    assert len(again.trials) == 3
    assert [backup.read_bytes() for backup in tmp_path.glob("optuna_journal.log.torn-*")] == [torn]


@pytest.mark.timeout(240)
def test_scores_with_a_byte_order_mark_keep_their_epochs_on_a_merge(project, capsys):
    """An evaluation's scores.json saved again by an editor that adds a BOM: --epoch still merges into it."""
    _fresh_run(project)
    argv = [a.replace("{tmp}", str(project)) for a in _evaluate()]
    assert _run_main(argv) == 0, capsys.readouterr()
    scores = project / "fresh" / "run" / "evaluation" / "scores.json"
    epochs = set(json.loads(scores.read_text())["epochs"])
    scores.write_bytes(BOM + scores.read_bytes())
    assert _run_main([*argv, "--epoch", "2"]) == 0, capsys.readouterr()
    assert set(json.loads(scores.read_text())["epochs"]) == epochs
