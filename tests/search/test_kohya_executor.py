"""The real executor: render -> runner (real tmux, the sd-scripts test double) -> evaluator (tiny CLIP)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from orchestrator.common.tomlfile import dumps_toml, read_toml
from orchestrator.config.paths import ProjectPaths
from orchestrator.search.executor import TrialRequest
from orchestrator.search.kohya_executor import KohyaExecutor
from orchestrator.search.merge import merge_trial_config
from orchestrator.search.results import RESULTS_FILE
from orchestrator.search.space import parse_search_space
from orchestrator.search.study import Search, SearchSettings
from tests.search.tiny_search import TINY_BASE, TINY_SPACE

FAKE_SD_SCRIPTS = Path(__file__).resolve().parents[1] / "fakes" / "fake_sd_scripts"
CHILD = Path(__file__).with_name("kohya_child.py")
pytestmark = pytest.mark.timeout(180)

BASE = TINY_BASE


def _images(folder: Path, count: int, shade: int) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.new("RGB", (64, 64), (shade, 40 * index, 120)).save(folder / f"img_{index}.png")
        (folder / f"img_{index}.txt").write_text("luca, a boy", encoding="utf-8")
    return folder


@pytest.fixture
def kohya_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from orchestrator.runner import tmux

    if tmux.tmux_binary() is None:
        pytest.skip("tmux is not installed")
    socket_name = f"lp-search-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(tmux.SOCKET_ENV, socket_name)
    monkeypatch.setenv("FAKE_SD_SCRIPTS_STEP_SECONDS", "0.05")
    monkeypatch.setenv("FAKE_SD_SCRIPTS_MODE", "")
    _images(tmp_path / "data" / "2_luca", 3, 200)
    (tmp_path / "models" / "sd15-random").mkdir(parents=True)
    # Two prompts: pose variety needs at least two samples per epoch, or no epoch gets a total.
    (tmp_path / "prompts.txt").write_text("luca, a boy --w 64 --h 64 --d 7 --s 2\n"
                                          "luca, running on a beach --w 64 --h 64 --d 8 --s 2\n", encoding="utf-8")
    paths = ProjectPaths(root=tmp_path, sd_scripts=FAKE_SD_SCRIPTS, trainer_python=sys.executable,
                         base_model_sd15=str(tmp_path / "models" / "sd15-random"), base_model_sdxl="x/y",
                         tokenizer_cache_dir="", dataset_dir=tmp_path / "data", output_root=tmp_path / "outputs",
                         logs_dir=tmp_path / "logs" / "training", prompts_file=tmp_path / "prompts.txt")
    references = _images(tmp_path / "references", 2, 180)
    yield paths, references, socket_name
    tmux.kill_server(socket_name)


@pytest.fixture(scope="module")
def tiny_encoder():
    from orchestrator.vision import load_clip

    return load_clip("tiny-clip", "random")


def _executor(world, encoder) -> KohyaExecutor:
    paths, references, socket_name = world
    return KohyaExecutor(paths=paths, references=references, device="cpu", allow_cpu=True, encoder=encoder,
                         tmux_socket=socket_name, poll_seconds=0.1, stop_timeout=10)


def _request(tmp_path: Path, number: int = 0, **extra: object) -> TrialRequest:
    directory = tmp_path / "search" / "trials" / f"trial_{number:04d}"
    directory.mkdir(parents=True)
    overrides = {"network_dim": 8, "network_alpha": 4, **extra}
    config = merge_trial_config(BASE, overrides)
    (directory / "config.toml").write_text(dumps_toml(config))
    return TrialRequest(number, directory, config, overrides, {}, "tiny study")


def never_stop(epoch: int, score: float, validation_loss: float | None = None) -> bool:
    return False


def test_a_search_trains_scores_every_epoch_and_keeps_the_best_checkpoint(kohya_world, tiny_encoder,
                                                                         tmp_path) -> None:
    settings = SearchSettings(space=parse_search_space(TINY_SPACE), base_config=BASE, output=tmp_path / "search",
                              trials=2, seed=0, pruner="none")
    Search(settings, _executor(kohya_world, tiny_encoder)).run()
    data = json.loads((tmp_path / "search" / RESULTS_FILE).read_text())
    assert data["counted_trials"] == 2
    for entry in data["trials"]:
        assert entry["outcome"] == "complete", entry["reason"]
        assert sorted(entry["epoch_scores"]) == ["1", "2", "3"]
        assert entry["value"] == entry["epoch_scores"][str(entry["best_epoch"])]
        assert Path(entry["checkpoint"]).is_file() and entry["gpu_seconds"] > 0
        run_dir = Path(entry["directory"]) / "run"
        assert json.loads((run_dir / "run.json").read_text())["status"] == "succeeded"
        assert (run_dir / "evaluation" / "best.json").is_file()
        training = read_toml(run_dir / "config" / "training.toml")
        flat = {k: v for table in training.values() for k, v in table.items()}
        assert flat["network_dim"] == entry["params"]["network_dim"]
        assert flat["network_alpha"] == entry["overrides"]["network_alpha"]


def test_a_stop_request_stops_the_trainer_mid_run_and_keeps_its_outputs(kohya_world, tiny_encoder, tmp_path,
                                                                        monkeypatch) -> None:
    from orchestrator.runner.files import RunFiles, pid_alive

    monkeypatch.setenv("FAKE_SD_SCRIPTS_STEP_SECONDS", "0.3")
    reported: list[int] = []
    outcome = _executor(kohya_world, tiny_encoder).run(
        _request(tmp_path), lambda epoch, score, validation_loss=None: reported.append(epoch) or epoch >= 1)
    assert outcome.stopped_early and outcome.failure_cause is None
    assert reported == [1] and sorted(outcome.epoch_scores) == [1]
    run_dir = tmp_path / "search" / "trials" / "trial_0000" / "run"
    assert (run_dir / "trial_0000-000001.safetensors").is_file()
    assert not (run_dir / "trial_0000.safetensors").exists(), "the trainer ran to the end"
    files = RunFiles(run_dir)
    assert not pid_alive(files.read(files.trainer)["pid"])
    assert files.read(files.stop)["reason"] == "pruned"
    assert outcome.best_epoch == 1 and outcome.checkpoint.endswith("trial_0000-000001.safetensors")


def test_a_trainer_crash_comes_back_as_the_trials_failure_cause(kohya_world, tiny_encoder, tmp_path,
                                                               monkeypatch) -> None:
    monkeypatch.setenv("FAKE_SD_SCRIPTS_MODE", "oom")
    outcome = _executor(kohya_world, tiny_encoder).run(_request(tmp_path), never_stop)
    assert outcome.failure_cause and outcome.failure_cause.startswith("cuda_oom")
    assert not outcome.stopped_early


def test_a_trainer_that_outlived_its_orchestrator_is_readopted(kohya_world, tiny_encoder, tmp_path,
                                                               monkeypatch) -> None:
    monkeypatch.setenv("FAKE_SD_SCRIPTS_STEP_SECONDS", "0.4")
    options = tmp_path / "child.json"
    options.write_text(json.dumps({"output": str(tmp_path / "search"), "root": str(tmp_path),
                                   "socket": kohya_world[2], "space": TINY_SPACE, "base": BASE}))
    child = subprocess.Popen([sys.executable, str(CHILD), str(options)], stderr=subprocess.PIPE, text=True)
    run_json = tmp_path / "search" / "trials" / "trial_0000" / "run" / "run.json"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if run_json.is_file() and json.loads(run_json.read_text()).get("epochs"):
            break
        assert child.poll() is None, child.stderr.read()[-3000:]
        time.sleep(0.1)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    assert json.loads(run_json.read_text())["status"] in ("pending", "running")
    settings = SearchSettings(space=parse_search_space(TINY_SPACE), base_config=BASE, output=tmp_path / "search",
                              trials=1, seed=0, pruner="none")
    summary = Search(settings, _executor(kohya_world, tiny_encoder)).run()
    assert summary.adopted == [0] and summary.counted_trials == 1
    entry = json.loads((tmp_path / "search" / RESULTS_FILE).read_text())["trials"][0]
    assert entry["adopted"] and entry["outcome"] == "complete" and sorted(entry["epoch_scores"]) == ["1", "2", "3"]
    assert json.loads(run_json.read_text())["status"] == "succeeded"
    assert len(list((tmp_path / "logs" / "training").glob("trial_0000_*.log"))) == 1, "trained twice"


def test_a_failing_report_stops_the_trainer_before_the_error_propagates(kohya_world, tiny_encoder, tmp_path,
                                                                        monkeypatch) -> None:
    from orchestrator.runner.files import RunFiles, pid_alive

    monkeypatch.setenv("FAKE_SD_SCRIPTS_STEP_SECONDS", "0.3")

    def broken_report(epoch: int, score: float, validation_loss: float | None = None) -> bool:
        raise RuntimeError("storage went away")

    with pytest.raises(RuntimeError, match="storage went away"):
        _executor(kohya_world, tiny_encoder).run(_request(tmp_path), broken_report)
    files = RunFiles(tmp_path / "search" / "trials" / "trial_0000" / "run")
    assert not pid_alive(files.read(files.trainer)["pid"])
    assert files.read(files.stop)["reason"] == "search_error"


def test_a_refused_preflight_aborts_the_search_instead_of_failing_every_trial(kohya_world, tiny_encoder,
                                                                             tmp_path) -> None:
    from dataclasses import replace

    from orchestrator.search.executor import SearchAborted

    paths, references, socket_name = kohya_world
    broken = (replace(paths, trainer_python=str(tmp_path / "no-python")), references, socket_name)
    with pytest.raises(SearchAborted, match="pre-flight refused trial 0"):
        _executor(broken, tiny_encoder).run(_request(tmp_path), never_stop)


def test_a_prune_asks_for_the_stop_without_a_nested_blocking_follow(kohya_world, tiny_encoder, tmp_path,
                                                                    monkeypatch) -> None:
    import orchestrator.runner as runner

    def nested_stop(*args, **kwargs):
        raise AssertionError("stop_run inside follow's callback blocks the NaN and stall checks")

    monkeypatch.setattr(runner, "stop_run", nested_stop)
    monkeypatch.setenv("FAKE_SD_SCRIPTS_STEP_SECONDS", "0.3")
    outcome = _executor(kohya_world, tiny_encoder).run(_request(tmp_path),
                                                       lambda epoch, score, validation_loss=None: epoch >= 1)
    assert outcome.stopped_early and outcome.failure_cause is None


def test_an_adopted_run_that_was_pruned_is_recorded_pruned(kohya_world, tiny_encoder, tmp_path) -> None:
    from orchestrator.runner.record import RunRecord

    request = _request(tmp_path)
    request.run_dir.mkdir(parents=True)
    RunRecord(output_name="trial_0000", run_dir=str(request.run_dir), status="stopped", stop_reason="pruned",
              started_at="2026-01-01T00:00:00+00:00", finished_at="2026-01-01T00:10:00+00:00").save()
    outcome = _executor(kohya_world, tiny_encoder).adopt(request, never_stop)
    assert outcome is not None and outcome.adopted
    assert outcome.stopped_early and outcome.failure_cause is None


def test_each_sample_epoch_reports_its_validation_loss_live_and_on_adoption(kohya_world, tiny_encoder,
                                                                            tmp_path) -> None:
    # 3 images at 0.34: sd-scripts trains on 2 and validates on 1 (the fake does the same arithmetic).
    request = _request(tmp_path, **{"dataset.validation_split": 0.34})
    live: list[tuple[int, float | None]] = []

    def report(epoch: int, score: float, validation_loss: float | None = None) -> bool:
        live.append((epoch, validation_loss))
        return False

    outcome = _executor(kohya_world, tiny_encoder).run(request, report)
    assert outcome.failure_cause is None and sorted(outcome.epoch_scores) == [1, 2, 3]
    logged = {row["epoch"]: row["loss"]
              for row in json.loads((request.run_dir / "run.json").read_text())["validation_losses"]}
    assert sorted(logged) == [1, 2, 3] and len(set(logged.values())) == 3
    assert live == [(epoch, logged[epoch]) for epoch in (1, 2, 3)]
    # The orchestrator died after the trainer ended: adoption reports every epoch with the same losses.
    adopted: list[tuple[int, float | None]] = []
    _executor(kohya_world, tiny_encoder).adopt(
        request, lambda epoch, score, validation_loss=None: adopted.append((epoch, validation_loss)) or False)
    assert adopted == live


def test_without_a_validation_split_the_loss_reported_is_none(kohya_world, tiny_encoder, tmp_path) -> None:
    seen: list[float | None] = []
    _executor(kohya_world, tiny_encoder).run(
        _request(tmp_path), lambda epoch, score, validation_loss=None: seen.append(validation_loss) or False)
    assert seen == [None, None, None]
