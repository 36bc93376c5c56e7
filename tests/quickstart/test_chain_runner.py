"""The quickstart's step runner: fresh output folder, per-stage timing, a summary even on failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.common.errors import UserInputError
from orchestrator.quickstart import QuickstartOptions, Step, run_quickstart
from orchestrator.quickstart.chain import SUMMARY_NAME, start_fresh, tmux_socket_for
from orchestrator.quickstart.steps import quickstart_paths


def _summary(out: Path) -> dict:
    return json.loads((out / SUMMARY_NAME).read_text(encoding="utf-8"))


def _note(name: str):
    def run(state) -> dict:
        (state.out / f"{name}.txt").write_text(name, encoding="utf-8")
        return {"wrote": name}
    return run


def _fail(state) -> dict:
    raise UserInputError("the toy frames folder is empty", path=state.out / "toy")


def test_steps_run_in_order_and_each_is_timed(tmp_path: Path) -> None:
    out = tmp_path / "qs"
    steps = (Step("first", "one", _note("first")), Step("second", "two", _note("second")))
    result = run_quickstart(QuickstartOptions(out=out, progress=False), steps=steps)
    summary = _summary(out)
    assert [s["name"] for s in summary["stages"]] == ["first", "second"]
    assert [s["facts"] for s in summary["stages"]] == [{"wrote": "first"}, {"wrote": "second"}]
    assert all(s["status"] == "ok" and s["seconds"] >= 0 for s in summary["stages"])
    assert result.total_seconds == pytest.approx(sum(s.seconds for s in result.stages))
    assert (out / "first.txt").is_file() and (out / "second.txt").is_file()


def test_a_failing_stage_is_recorded_and_stops_the_chain(tmp_path: Path) -> None:
    out = tmp_path / "qs"
    steps = (Step("first", "one", _note("first")), Step("broken", "fails", _fail),
             Step("never", "not reached", _note("never")))
    with pytest.raises(UserInputError, match="toy frames folder is empty"):
        run_quickstart(QuickstartOptions(out=out, progress=False), steps=steps)
    summary = _summary(out)
    assert [(s["name"], s["status"]) for s in summary["stages"]] == [("first", "ok"), ("broken", "failed")]
    assert "toy frames folder is empty" in summary["stages"][1]["error"]
    assert summary["complete"] is False
    assert not (out / "never.txt").exists()


def test_a_rerun_starts_from_an_empty_folder(tmp_path: Path) -> None:
    out = tmp_path / "qs"
    run_quickstart(QuickstartOptions(out=out, progress=False), steps=(Step("a", "a", _note("a")),))
    run_quickstart(QuickstartOptions(out=out, progress=False), steps=(Step("b", "b", _note("b")),))
    assert sorted(p.name for p in out.iterdir()) == sorted(["b.txt", SUMMARY_NAME])


def test_a_folder_the_quickstart_did_not_write_is_never_emptied(tmp_path: Path) -> None:
    precious = tmp_path / "my_project"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(UserInputError, match="not written by the quickstart"):
        start_fresh(precious, tmux_socket_for(precious))
    assert (precious / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_each_output_folder_gets_its_own_tmux_server(tmp_path: Path) -> None:
    assert tmux_socket_for(tmp_path / "a") != tmux_socket_for(tmp_path / "b")
    assert tmux_socket_for(tmp_path / "a") == tmux_socket_for(tmp_path / "x" / ".." / "a")


def test_every_data_and_output_path_moves_under_out(tmp_path: Path) -> None:
    from orchestrator.config.paths import load_paths

    base = load_paths()
    paths = quickstart_paths(QuickstartOptions(out=tmp_path, trainer_python="venv/bin/python"), base)
    for moved in (paths.dataset_dir, paths.output_root, paths.logs_dir, paths.prompts_file):
        assert moved.is_relative_to(tmp_path)
    assert Path(paths.trainer_python).is_absolute()
    assert paths.sd_scripts == base.sd_scripts
