"""`search run --parallel-gpus`: one worker process per (fake) GPU sharing a journal-file study."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from orchestrator.common.errors import UserInputError
from orchestrator.runner.gpu_lock import GPU_LOCK_DIR_ENV, GpuBusy, GpuLock, gpu_holder
from orchestrator.search._journal import HeartbeatJournalStorage
from orchestrator.search.parallel import WorkerPool, study_state_of
from orchestrator.search.results import build_results, counted_trials
from orchestrator.search.simulator import PROGRESS_FILE, SimulatedExecutor
from orchestrator.search.storage import default_storage_url, journal_url, make_storage
from orchestrator.search.study import Search, SearchSettings

sys.path.insert(0, str(Path(__file__).parent))
from parallel_child import read_attempts  # noqa: E402

CHILD = Path(__file__).with_name("parallel_child.py")
PROJECT = Path(__file__).resolve().parents[2]
STUDY = "parallel_study"


@pytest.fixture(autouse=True)
def private_gpu_locks(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "gpu_locks"
    monkeypatch.setenv(GPU_LOCK_DIR_ENV, str(folder))
    return folder


def _create_study(short_space, base_config, output: Path, trials: int, **changes) -> Search:
    """What the parent of `search run --parallel-gpus` does before it starts the workers."""
    settings = SearchSettings(space=short_space, base_config=base_config, output=output, trials=trials, seed=1,
                              pruner="none", patience=0, enforce_constraints=False,
                              storage_url=journal_url(output / "optuna_journal.log"), **changes)
    return Search(settings, SimulatedExecutor())


def _pool(search: Search, tmp_path: Path, gpus: list[int], **options) -> WorkerPool:
    settings = search.settings
    options_file = tmp_path / "worker_options.json"
    options_file.write_text(json.dumps({"storage": settings.storage, "study_name": settings.study_name,
                                        "output": str(settings.output), **options}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT), os.environ.get("PYTHONPATH", "")])}
    return WorkerPool(gpus, lambda gpu: [sys.executable, str(CHILD), str(options_file), str(gpu)],
                      log_folder=settings.output / "workers", env=env, poll_seconds=0.2, say=lambda _: None,
                      study_state=lambda: study_state_of(search.study, settings.trials))


def _intervals(events: list[dict]) -> list[tuple[str, float, float, int]]:
    """(gpu, start, end, trial) of every attempt that ended."""
    starts = {(e["trial"], e["pid"]): e for e in events if e["event"] == "start"}
    return [(e["gpu"], starts[(e["trial"], e["pid"])]["at"], e["at"], e["trial"]) for e in events
            if e["event"] == "end" and (e["trial"], e["pid"]) in starts]


def _most_at_once(intervals) -> int:
    edges = sorted([(start, 1) for _, start, _, _ in intervals] + [(end, -1) for _, _, end, _ in intervals])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


@pytest.mark.timeout(240)
def test_three_workers_train_three_trials_at_once_each_pinned_to_its_own_gpu(short_space, base_config,
                                                                            tmp_path) -> None:
    output = tmp_path / "search"
    search = _create_study(short_space, base_config, output, trials=6)
    # The first three attempts wait for each other: the test fails unless three really run at once.
    outcome = _pool(search, tmp_path, [0, 1, 2], wall_seconds_per_epoch=0.05, barrier=3).run()
    assert outcome.done and not outcome.broken
    trials = search.study.get_trials()
    counted = counted_trials(trials)
    assert len(counted) == 6 and all(t.state == TrialState.COMPLETE for t in counted)
    # Rejected by a safety rule, or asked near the end past the target ("surplus"): never trained.
    assert all(t.user_attrs["outcome"] in ("rejected", "surplus") for t in trials if t not in counted)
    intervals = _intervals(read_attempts(output))
    assert sorted(trial for *_, trial in intervals) == sorted(t.number for t in counted), \
        "every counted trial trained exactly once"
    assert _most_at_once(intervals) == 3
    for gpu in ("0", "1", "2"):
        mine = sorted((start, end) for g, start, end, _ in intervals if g == gpu)
        assert all(end <= next_start for (_, end), (next_start, _) in zip(mine, mine[1:], strict=False)), \
            f"two trainers overlapped on GPU {gpu}"
    # The GPU each trainer was pinned to is the one its trial records.
    recorded = {t.number: t.user_attrs["gpus"] for t in trials}
    assert all(recorded[trial] == gpu for gpu, _, _, trial in intervals)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("trainer_survives", [False, True], ids=["trainer-died", "trainer-lives"])
def test_a_worker_killed_mid_trial_is_replaced_and_its_trial_counts_exactly_once(short_space, base_config,
                                                                                tmp_path, trainer_survives) -> None:
    output = tmp_path / "search"
    search = _create_study(short_space, base_config, output, trials=5)
    pool = _pool(search, tmp_path, [0, 1, 2], wall_seconds_per_epoch=0.25, trainer_survives=trainer_survives,
                 heartbeat_interval=1, grace_period=30)
    result: dict = {}
    runner = threading.Thread(target=lambda: result.setdefault("outcome", pool.run()))
    runner.start()
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline:
        for progress in output.glob(f"trials/*/{PROGRESS_FILE}"):
            state = _read(progress)
            attempts = [e for e in read_attempts(output) if e["trial"] == int(progress.parent.name[6:])]
            if state and state["epochs_done"] >= 1 and not state["finished"] and attempts \
                    and attempts[-1]["gpu"] == "1" and attempts[-1]["event"] == "start":
                victim = int(progress.parent.name.removeprefix("trial_"))
        time.sleep(0.05)
    assert victim is not None, "GPU 1 never trained"
    os.kill(pool.slots[1].process.pid, signal.SIGKILL)
    runner.join(timeout=240)
    outcome = result["outcome"]
    assert outcome.done and not outcome.broken
    assert pool.slots[1].started == 2 and pool.slots[1].exit_codes[0] == -signal.SIGKILL
    data = build_results(search.study.get_trials(), study_name=STUDY, storage="", target_trials=5)
    by_number = {t["number"]: t for t in data["trials"]}
    retries = [t for t in data["trials"] if t["retry_of"] == victim]
    if trainer_survives:  # GPU 1's new worker re-adopted the trainer: no retry, it completed in place
        assert retries == [] and by_number[victim]["outcome"] == "complete" and by_number[victim]["adopted"]
        adopted = [e for e in read_attempts(output) if e["trial"] == victim and e.get("adopted")]
        assert [e["gpu"] for e in adopted] == ["1"]
    else:  # nothing survived: failed with its cause, re-queued once, and the retry completed
        assert by_number[victim]["state"] == "fail" and by_number[victim]["retried_as_new_trial"]
        assert "died" in by_number[victim]["reason"]
        assert len(retries) == 1 and retries[0]["outcome"] == "complete"
        assert retries[0]["params"] == by_number[victim]["params"]
    assert data["counted_trials"] == 5
    assert not [t for t in data["trials"] if t["state"] in ("running", "waiting")]
    finished = [trial for *_, trial in _intervals(read_attempts(output))]
    assert len(finished) == len(set(finished)), f"a trial number trained to its end twice: {finished}"


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def test_journal_heartbeats_fail_and_requeue_a_silent_trial_once(tmp_path) -> None:
    storage = HeartbeatJournalStorage(tmp_path / "study.log", heartbeat_interval=1, grace_period=2,
                                      heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(2))
    study = optuna.create_study(storage=storage, study_name="beats")
    silent, never_beaten = study.ask(), study.ask()
    for trial in (silent, never_beaten):
        trial.suggest_float("x", 0, 1)
    storage.record_heartbeat(silent._trial_id)
    optuna.storages.fail_stale_trials(study)
    assert study.trials[0].state == TrialState.RUNNING, "a fresh beat is not stale"
    beat = storage.beats / f"trial_id_{silent._trial_id}"
    os.utime(beat, (time.time() - 10, time.time() - 10))
    other_process = make_storage(journal_url(tmp_path / "study.log"), heartbeat_interval=1, grace_period=2)
    optuna.storages.fail_stale_trials(optuna.load_study(study_name="beats", storage=other_process))
    optuna.storages.fail_stale_trials(study)  # a second worker finding the same stale trial changes nothing
    states = [t.state for t in optuna.load_study(study_name="beats", storage=storage).trials]
    assert states == [TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING]


def test_a_gpu_lock_names_its_holder_and_is_freed_when_the_holder_is_killed(private_gpu_locks) -> None:
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, sys.argv[1]);"
        "from orchestrator.runner.gpu_lock import GpuLock;"
        "lock = GpuLock([3], purpose='a test trainer').__enter__(); print('held', flush=True); time.sleep(60)"),
        str(PROJECT)], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert holder.stdout.readline().strip() == "held"
        assert gpu_holder(3) == {"pid": holder.pid, "purpose": "a test trainer"}
        with pytest.raises(GpuBusy, match=rf"GPU 3 is in use by pid {holder.pid} \(a test trainer\)"):
            GpuLock([2, 3], purpose="second").__enter__()
        assert gpu_holder(2) is None, "a refused taker keeps none of the GPUs it asked for"
    finally:
        holder.kill()
        holder.wait()
    with GpuLock([3], purpose="after the kill"):
        assert gpu_holder(3) == {"pid": os.getpid(), "purpose": "after the kill"}
    assert gpu_holder(3) is None


def test_parallel_mode_picks_a_journal_and_refuses_a_folder_whose_study_is_in_sqlite(tmp_path, monkeypatch) -> None:
    fresh = tmp_path / "fresh"
    assert default_storage_url(fresh, parallel=True).startswith("journal:///")
    assert default_storage_url(fresh).startswith("sqlite:///")
    old = tmp_path / "old"
    old.mkdir()
    (old / "optuna_study.db").write_bytes(b"")
    assert default_storage_url(old, parallel=True).startswith("sqlite:///")
    from orchestrator.cli import main

    monkeypatch.chdir(PROJECT)
    code = main(["search", "run", "--executor", "simulated", "--base-config", "luca_final_v1_pure",
                 "--parallel-gpus", "0,1", "--output", str(old), "--trials", "2"])
    assert code == UserInputError.exit_code
    with pytest.raises(SystemExit) as refused:  # argparse's group: --gpus and --parallel-gpus exclude each other
        main(["search", "run", "--executor", "simulated", "--base-config", "luca_final_v1_pure",
              "--parallel-gpus", "0,1", "--gpus", "0", "--output", str(fresh), "--trials", "2"])
    assert refused.value.code == 2 and not fresh.exists()
