"""The scheduler over several workers of one study: `search run --parallel-gpus` with --scheduler, and worker
groups that do not share a folder (PostgreSQL workers on several machines)."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import pytest
from optuna.trial import TrialState

from orchestrator.runner.gpu_lock import GPU_LOCK_DIR_ENV
from orchestrator.search.parallel import WorkerPool, study_state_of
from orchestrator.search.results import counted_trials
from orchestrator.search.settings import load_worker_settings
from orchestrator.search.simulator import SimulatedExecutor
from orchestrator.search.storage import journal_url
from orchestrator.search.study import Search, SearchSettings
from orchestrator.search.vocabulary import PHASE_ATTR, PHASE_FINISHED, PHASE_STOPPED, SEGMENTS_ATTR

sys.path.insert(0, str(Path(__file__).parent))
from parallel_child import read_attempts  # noqa: E402

CHILD = Path(__file__).with_name("parallel_child.py")
PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def private_gpu_locks(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(GPU_LOCK_DIR_ENV, str(tmp_path / "gpu_locks"))


def _settings(short_space, base_config, output: Path, storage: Path, trials: int) -> SearchSettings:
    return SearchSettings(space=short_space, base_config=base_config, output=output, trials=trials, seed=3,
                          pruner="none", patience=0, enforce_constraints=False, storage_url=journal_url(storage),
                          study_name="scheduled", scheduler="first-epoch")


def _assert_every_epoch_trained_once_and_nothing_left_paused(trials) -> None:
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    scheduled = [t for t in trials if t.user_attrs.get(SEGMENTS_ATTR)]
    assert scheduled
    for trial in scheduled:
        segments = trial.user_attrs[SEGMENTS_ATTR]
        assert segments[0][0] == 1, (trial.number, segments)
        for before, after in zip(segments, segments[1:], strict=False):  # [first epoch, last epoch, ...]
            assert after[0] == before[1] + 1, f"trial {trial.number} trained an epoch twice or skipped one: {segments}"
        assert trial.user_attrs[PHASE_ATTR] in (PHASE_FINISHED, PHASE_STOPPED)


@pytest.mark.timeout(300)
def test_parallel_workers_schedule_with_the_studys_scheduler_and_resume_each_paused_run_once(
        short_space, base_config, tmp_path) -> None:
    output = tmp_path / "search"
    search = Search(_settings(short_space, base_config, output, output / "optuna_journal.log", trials=8),
                    SimulatedExecutor())
    worker = load_worker_settings(search.settings.storage, "scheduled", output)
    assert (worker.scheduler, worker.gpu_hours) == ("first-epoch", None)  # a worker schedules as the study was started
    options_file = tmp_path / "options.json"
    options_file.write_text(json.dumps({"storage": search.settings.storage, "study_name": "scheduled",
                                        "output": str(output), "wall_seconds_per_epoch": 0.02}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT), os.environ.get("PYTHONPATH", "")])}
    pool = WorkerPool([0, 1, 2], lambda gpu: [sys.executable, str(CHILD), str(options_file), str(gpu)],
                      log_folder=output / "workers", env=env, poll_seconds=0.2, say=lambda _: None,
                      study_state=lambda: study_state_of(search.study, 8, search.schedule))
    outcome = pool.run()
    assert outcome.done and not outcome.broken
    trials = search.study.get_trials()
    assert len(counted_trials(trials)) == 8
    _assert_every_epoch_trained_once_and_nothing_left_paused(trials)
    resumed = [t for t in trials if len(t.user_attrs.get(SEGMENTS_ATTR) or []) > 1]
    assert resumed, "first-epoch promotes the best of each 4 runs: some run must have been resumed"
    attempts = read_attempts(output)
    for trial in resumed:  # a resume is one more attempt, never two workers on one run at once
        mine = sorted((e["at"], e["event"]) for e in attempts if e["trial"] == trial.number)
        assert [event for _, event in mine] == ["start", "end"] * len(trial.user_attrs[SEGMENTS_ATTR])


@pytest.mark.timeout(300)
def test_worker_groups_that_share_no_folder_resume_only_their_own_paused_runs(short_space, base_config,
                                                                               tmp_path) -> None:
    storage = tmp_path / "shared_study.log"
    groups = {name: (_settings(short_space, base_config, tmp_path / name, storage, trials=10),
                     SimulatedExecutor(record_progress=False, wall_seconds_per_epoch=0.01))
              for name in ("machine_a", "machine_b")}
    searches = [Search(settings, executor) for settings, executor in groups.values()]
    errors: list[BaseException] = []

    def run(search: Search) -> None:
        try:
            search.run()
        except BaseException as error:  # noqa: BLE001 -- reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(search,)) for search in searches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(240)
    assert not errors and not any(thread.is_alive() for thread in threads)
    trials = searches[0].study.get_trials()
    _assert_every_epoch_trained_once_and_nothing_left_paused(trials)
    trained_by = [{number for _, number in executor.trained_epochs} for _, executor in groups.values()]
    assert not trained_by[0] & trained_by[1], "a run was resumed on a machine that cannot read its state"
    assert all(trained_by), "both machines trained"
