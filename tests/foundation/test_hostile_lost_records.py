"""Class 5 of issue 29: what a record says about files is checked against the disk, relative to the folder
the record lives in, before anything is decided from it.

Each case copies a run whose ``run.json`` names its checkpoints by absolute path (as the runner writes it),
damages the copy's record in one way, and asserts that the copy's evaluation uses the copy's own files, never
the original folder's or a file outside the run (named in a problem line instead), and that the original
is byte for byte unchanged.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.evaluate._compare import load_evaluated_run
from orchestrator.evaluate._run_facts import gather_run_facts
from tests.evaluate.fake_run import make_run
from tests.foundation.test_hostile_inputs import TINY_CLIP, _run_main, _snapshot

LAST = 4


def _original(root: Path) -> Path:
    """A finished run whose record names its final checkpoint (which carries no epoch in its name)."""
    run = make_run(root / "orig", record={}).run_dir
    record = {"status": "succeeded", "output_name": "luca", "run_dir": str(run),
              "argv": ["python", "sdxl_train_network.py"],
              "checkpoints": {"2": str(run / "luca-000002.safetensors"), str(LAST): str(run / "luca.safetensors")}}
    (run / "run.json").write_text(json.dumps(record))
    return run


def _copy(root: Path, edit: Callable[[dict, Path, Path], None] | None = None) -> Path:
    original = root / "orig" / "run"
    copy = root / "copy" / "run"
    shutil.copytree(root / "orig", root / "copy")
    if edit is not None:
        record = json.loads((copy / "run.json").read_text())
        edit(record, original, copy)
        (copy / "run.json").write_text(json.dumps(record))
    return copy


def _set(epoch: int, value: Callable[[Path, Path], str]) -> Callable[[dict, Path, Path], None]:
    def edit(record: dict, original: Path, copy: Path) -> None:
        record["checkpoints"][str(epoch)] = value(original, copy)
    return edit


def _drop_run_dir(record: dict, original: Path, copy: Path) -> None:
    record.pop("run_dir")


def _outside(root: Path) -> Path:
    stray = root / "elsewhere" / "luca.safetensors"
    stray.parent.mkdir(exist_ok=True)
    stray.write_bytes(b"someone else's weights")
    return stray


# name -> (edit of the copy's record, the path the final epoch must have (None: not used), a problem names)
CASES: dict[str, tuple[Callable[[dict, Path, Path], None] | None, str | None, str | None]] = {
    "copy_as_is": (None, "copy/run/luca.safetensors", None),
    "copy_without_run_dir": (_drop_run_dir, None, "outside this run folder"),
    "relative_path": (_set(LAST, lambda o, c: "luca.safetensors"), "copy/run/luca.safetensors", None),
    "relative_path_escaping": (_set(LAST, lambda o, c: "../../orig/run/luca.safetensors"), None, "outside"),
    "absolute_path_outside_any_run": (_set(LAST, lambda o, c: str(_outside(o.parent.parent))), None, "elsewhere"),
    "original_file_the_copy_lacks": (_set(LAST, lambda o, c: str(o / "luca-000004.safetensors")), None, None),
    "path_is_a_folder": (_set(LAST, lambda o, c: str(o / "config")), None, None),
    "empty_path": (_set(LAST, lambda o, c: ""), None, None),
    "path_into_a_sibling_with_the_same_prefix": (_set(LAST, lambda o, c: str(o) + "_v2/luca.safetensors"), None,
                                                 "outside"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_copied_runs_record_is_read_against_the_copys_disk(name, tmp_path):
    edit, final, problem = CASES[name]
    _original(tmp_path)
    if name == "path_into_a_sibling_with_the_same_prefix":
        _outside(tmp_path)
        shutil.copytree(tmp_path / "elsewhere", tmp_path / "orig" / "run_v2")
    before = _snapshot(tmp_path / "orig")
    copy = _copy(tmp_path, edit)
    facts = gather_run_facts(copy)
    used = {epoch: c.path for epoch, c in facts.checkpoints_by_epoch.items()}
    assert all(copy in path.parents for path in used.values()), used
    if final is None:
        assert LAST not in used, used
    else:
        assert used[LAST] == tmp_path / final
    if problem is not None:
        assert any(problem in line for line in facts.problems), facts.problems
    assert _snapshot(tmp_path / "orig") == before


@pytest.mark.timeout(60)
def test_comparing_a_copied_evaluation_reads_the_copys_record(tmp_path):
    original = _original(tmp_path)
    (original / "evaluation").mkdir()
    (original / "evaluation" / "scores.json").write_text(json.dumps({
        "schema": 2, "run_dir": str(original), "epochs": {}, "encoder": "x"}))
    copy = _copy(tmp_path)
    record = json.loads((copy / "run.json").read_text())
    (copy / "run.json").write_text(json.dumps({**record, "argv": ["python", "train_network.py"]}))
    evaluated = load_evaluated_run(copy)
    assert evaluated.run_dir == copy and evaluated.family == "sd15"


@pytest.mark.timeout(300)
def test_evaluating_a_copied_run_chooses_among_the_copys_checkpoints(tmp_path, capsys):
    _original(tmp_path)
    before = _snapshot(tmp_path / "orig")
    copy = _copy(tmp_path)
    (copy / "luca.safetensors").write_bytes(b"the copy's own final weights")
    code = _run_main(["evaluate", str(copy), "--references", str(tmp_path / "copy" / "references"), *TINY_CLIP,
                      "--cache-dir", str(tmp_path / "cache")])
    output = "".join(capsys.readouterr())
    assert code == 0 and "Traceback" not in output, output
    text = (copy / "evaluation" / "scores.json").read_text()
    assert str(tmp_path / "orig") not in text
    assert _snapshot(tmp_path / "orig") == before


def test_the_table_has_at_least_eight_cases():
    assert len(CASES) >= 8


@pytest.mark.timeout(300)
def test_merging_into_a_copied_evaluation_keeps_no_path_of_the_original(tmp_path, capsys):
    """Epochs kept by --epoch from a copied scores.json name the copy's checkpoints, never the original's."""
    original = _original(tmp_path)
    evaluate = ["--references", str(tmp_path / "orig" / "references"), *TINY_CLIP, "--cache-dir", str(tmp_path / "c")]
    assert _run_main(["evaluate", str(original), *evaluate]) == 0, capsys.readouterr()
    before = _snapshot(tmp_path / "orig")
    copy = _copy(tmp_path)
    assert _run_main(["evaluate", str(copy), *evaluate, "--epoch", str(LAST)]) == 0, capsys.readouterr()
    for name in ("scores.json", "best.json"):
        assert str(original) not in (copy / "evaluation" / name).read_text(), name
    assert _snapshot(tmp_path / "orig") == before
