"""`run`: stages in order, each skipped while what it reads is unchanged; a change redoes it and those after.

The stages here are the real table with each stage's work replaced by a note in its own folder: what
is hashed, skipped, redone, continued and locked is the real engine's doing.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.common.errors import UserInputError
from orchestrator.project import STAGES, init_project, project_status, run_project, write_status_page
from orchestrator.project.records import RUNNING, read_record, write_record
from orchestrator.project.run import run_lock
from orchestrator.project.stages import review_stage

FACTS = {"extract": {"films": 1, "shots": 4, "frames": 12}, "crop": {"crops": 11}, "review": {"kept": 9},
         "caption": {"captioned": 9}, "evaluate": {"best_checkpoint": "luca-000002.safetensors", "best_score": 0.5,
                                                   "scores": {"1": 0.4, "2": 0.5}}}


class Fakes:
    """The real stage table, each stage's work a note in its folder; ``ran`` lists what ran, in order."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.continuing: dict[str, bool] = {}

    def stage(self, stage):
        def work(context):
            self.ran.append(stage.name)
            self.continuing[stage.name] = context.continuing
            folder = stage.folder(context)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{stage.name}.note").write_text("done", encoding="utf-8")
            return FACTS.get(stage.name, {})
        return replace(stage, run=work)

    @property
    def table(self):
        return tuple(self.stage(stage) for stage in STAGES)


@pytest.fixture
def project(tmp_path: Path, inputs) -> Path:
    init_project(tmp_path / "luca", films=[inputs["film"]], references=inputs["references"],
                 profile=inputs["profile"])
    return tmp_path / "luca"


def _run(project: Path, fakes: Fakes, **kwargs):
    return run_project(project, stages=fakes.table, progress=False, say=lambda line: None, **kwargs)


ALL = [stage.name for stage in STAGES]


def test_a_first_run_runs_every_stage_in_order_and_a_second_does_nothing_and_says_so(project, capsys) -> None:
    fakes = Fakes()
    _run(project, fakes)
    assert fakes.ran == ALL
    started = time.perf_counter()
    lines: list[str] = []
    result = run_project(project, stages=fakes.table, progress=False, say=lines.append)
    assert time.perf_counter() - started < 5
    assert fakes.ran == ALL and result.did_nothing
    assert lines[-1] == "nothing to do: every stage is up to date"


def test_a_new_profile_redoes_captions_training_and_evaluation_not_the_crops(project, inputs) -> None:
    fakes = Fakes()
    _run(project, fakes)
    profile = inputs["profile"]
    profile.write_text(profile.read_text().replace("pixar film quality", "cinematic film quality"))
    fakes.ran.clear()
    _run(project, fakes)
    assert fakes.ran == ["caption", "train", "evaluate", "verdict"]


def test_an_option_change_redoes_its_stage_and_those_after_nothing_before(project) -> None:
    fakes = Fakes()
    _run(project, fakes)
    file = project / "project.toml"
    file.write_text(file.read_text().replace("repeats = 10", "repeats = 5"))
    fakes.ran.clear()
    _run(project, fakes)
    assert fakes.ran == ["prepare", "caption", "train", "evaluate", "verdict"]


def test_deleting_a_stage_folder_redoes_it_and_those_after(project) -> None:
    import shutil

    fakes = Fakes()
    _run(project, fakes)
    shutil.rmtree(project / "crops")
    fakes.ran.clear()
    _run(project, fakes)
    assert fakes.ran == ALL[1:]


def test_a_changed_stage_starts_from_an_empty_folder_but_an_interrupted_one_continues(project) -> None:
    fakes = Fakes()
    _run(project, fakes)
    # The training was interrupted (a kill, a reboot): its record says running, with the same inputs.
    record = read_record(project, "train")
    (project / "training" / "half-done.safetensors").write_text("epoch 1")
    write_record(project, replace(record, status=RUNNING))
    fakes.ran.clear()
    _run(project, fakes)
    assert fakes.ran == ["train", "evaluate", "verdict"] and fakes.continuing["train"] is True
    assert (project / "training" / "half-done.safetensors").is_file()
    file = project / "project.toml"
    file.write_text(file.read_text().replace("set = {}", "set = {learning_rate = 6e-5}"))
    _run(project, fakes)
    assert fakes.continuing["train"] is False and not (project / "training" / "half-done.safetensors").exists()


def test_the_review_stops_the_run_with_the_exact_next_step_until_decisions_come(project) -> None:
    fakes = Fakes()
    table = tuple(replace(s, run=review_stage) if s.name == "review" else fakes.stage(s) for s in STAGES)
    result = run_project(project, stages=table, progress=False, say=lambda line: None)
    assert result.waiting == (f"open {project / 'curation' / 'review.html'}, export your decisions to "
                              f"{project / 'curation' / 'decisions.json'}, then run again (or run again with "
                              "--accept-automatic to take the automatic decisions)")
    assert fakes.ran == ["extract", "crop", "curate"]
    status = project_status(project)
    assert [s.state for s in status.stages][:4] == ["done", "done", "done", "waiting for you"]
    assert status.next_step == result.waiting


def test_a_second_run_on_the_same_folder_is_refused_naming_the_first(project) -> None:
    with run_lock(project):
        with pytest.raises(UserInputError, match=r"another run is already working on this project: .*\"pid\""):
            _run(project, Fakes())
        assert main(["run", str(project)]) == 2


def test_a_failing_stage_is_recorded_with_its_cause_and_nothing_after_it_runs(project) -> None:
    fakes = Fakes()

    def broken(context):
        raise UserInputError("no frame decodes", path=project / "frames")

    table = tuple(replace(s, run=broken) if s.name == "crop" else fakes.stage(s) for s in STAGES)
    with pytest.raises(UserInputError):
        run_project(project, stages=table, progress=False, say=lambda line: None)
    assert fakes.ran == ["extract"]
    crop = next(s for s in project_status(project).stages if s.name == "crop")
    assert crop.state == "failed" and "no frame decodes" in crop.detail
    fakes.ran.clear()
    _run(project, fakes)
    assert fakes.ran == ALL[1:]  # the failed stage is retried, extract is not


def test_status_shows_each_stage_the_counts_as_they_flow_and_the_best_checkpoint(project, capsys) -> None:
    _run(project, Fakes())
    assert main(["status", str(project)]) == 0
    out = capsys.readouterr().out
    assert "1 films -> 4 shots -> 12 frames -> 11 crops -> 9 kept -> 9 captioned" in out
    assert "luca-000002.safetensors" in out
    page = write_status_page(project_status(project))
    data = json.loads(__import__("html").unescape(page.read_text().split('id="status-data">')[1].split("</script>")[0]))
    assert [s["state"] for s in data] == ["done"] * len(STAGES)


def test_detach_starts_the_run_in_a_named_tmux_session_and_prints_its_name(project, monkeypatch, capsys) -> None:
    from orchestrator.runner import tmux

    started = {}
    monkeypatch.setattr(tmux, "free_session_name", lambda base, socket_name=None: base)
    monkeypatch.setattr(tmux, "start_session", lambda name, argv, *, cwd, **kw: started.update(
        name=name, argv=argv, cwd=cwd))
    assert main(["run", str(project), "--detach", "--accept-automatic"]) == 0
    assert started["argv"][1:] == ["-m", "orchestrator", "run", str(project.resolve()), "--accept-automatic"]
    assert f"tmux attach -t {started['name']}" in capsys.readouterr().out


def test_status_says_a_deleted_stage_folder_is_redone_next(project) -> None:
    import shutil

    _run(project, Fakes())
    shutil.rmtree(project / "dataset")
    states = {s.name: (s.state, s.detail) for s in project_status(project).stages}
    assert states["prepare"][0] == "not yet" and "was deleted" in states["prepare"][1]
    assert states["crop"][0] == "done"


def test_status_counts_a_running_search_its_trials_gpu_hours_and_best_so_far(project) -> None:
    search = project / "search"
    search.mkdir()
    (search / "trial_results.json").write_text(json.dumps({"trials": [
        {"number": 0, "value": 0.41, "gpu_seconds": 3600, "checkpoint": "t0.safetensors"},
        {"number": 1, "value": 0.57, "gpu_seconds": 5400, "checkpoint": "t1.safetensors"},
        {"number": 2, "value": None, "gpu_seconds": 900}]}))
    training = project_status(project).training
    assert training["runs"] == 3 and training["gpu_hours"] == 2.75
    assert training["best_so_far"] == "trial 1: 0.5700 (t1.safetensors)"


def test_bad_input_at_run_is_refused_naming_the_file_and_nothing_produced_is_lost(project, inputs, capsys) -> None:
    fakes = Fakes()
    _run(project, fakes)
    before = sorted(str(p.relative_to(project)) for p in project.rglob("*"))
    profile = inputs["profile"]
    profile.write_text(profile.read_text() + "\nhair_colour: brown\n")
    assert main(["run", str(project)]) == 2
    assert f"{profile}" in capsys.readouterr().err
    inputs["film"].unlink()
    with pytest.raises(UserInputError, match=r"luca.avi: video file not found"):
        _run(project, fakes)
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*")) == before
    assert fakes.ran == ALL  # only the first run's stages ran


def test_a_touched_file_with_the_same_content_changes_nothing_a_new_reference_redoes_from_the_crops(
        project, inputs) -> None:
    import os

    from PIL import Image

    fakes = Fakes()
    _run(project, fakes)
    later = inputs["film"].stat().st_mtime + 100
    os.utime(inputs["film"], (later, later))  # copied back from a backup: new time, same bytes
    fakes.ran.clear()
    assert _run(project, fakes).did_nothing and fakes.ran == []
    Image.new("RGB", (32, 32), (1, 2, 3)).save(inputs["references"] / "ref_new.png")
    _run(project, fakes)
    assert fakes.ran == ALL[1:]  # the film's frames are kept
