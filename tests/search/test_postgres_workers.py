"""Several worker processes share one study in a real PostgreSQL server started by the test."""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.search.results import RESULTS_FILE

CHILD = Path(__file__).with_name("search_child.py")
pytestmark = pytest.mark.postgres


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres(argv: list[str]) -> list[str]:
    """Initdb refuses to run as root: run the server as the postgres user when we are root."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not installed (Debian package `postgresql`)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a `postgres` user to run the server as")
    root = Path(tempfile.mkdtemp(prefix="search_pg_"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = _free_port()
    subprocess.run(_as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                                 "--no-sync"]), check=True, capture_output=True)
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-w",
                                 "-l", str(root / "server.log"), "start"]), check=True, capture_output=True)
    try:
        subprocess.run(_as_postgres([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port),
                                     "-U", "postgres", "optuna_search"]), check=True, capture_output=True)
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/optuna_search"
    finally:
        subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _child(tmp_path: Path, name: str, **options) -> subprocess.Popen:
    settings = tmp_path / f"{name}.json"
    settings.write_text(json.dumps(options))
    return subprocess.Popen([sys.executable, str(CHILD), str(settings)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_three_workers_complete_every_trial_exactly_once(postgres_url: str, tmp_path: Path) -> None:
    trials = 6
    study = {"storage": postgres_url, "study_name": "shared_pg_study"}
    # The first `lora-pipeline search` creates the study (trials=0: create, then leave the work to workers).
    creator = _child(tmp_path, "creator", output=str(tmp_path / "main"), trials=0, seed=1, **study)
    assert creator.wait(timeout=120) == 0, creator.stderr.read()
    subprocess.run([sys.executable, "-c", f"""
import optuna
study = optuna.load_study(study_name="shared_pg_study", storage="{postgres_url}")
study.set_user_attr("target_trials", {trials})
"""], check=True)
    workers = [
        _child(tmp_path, f"worker{i}", output=str(tmp_path / f"worker{i}"), worker=True,
               wall_seconds_per_epoch=0.1, **study)
        for i in range(3)
    ]
    reports = []
    started = time.monotonic()
    for worker in workers:
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err[-3000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    assert time.monotonic() - started < 240
    ran = [number for report in reports for number in report["ran"]]
    assert len(ran) == len(set(ran)), f"a trial was trained twice: {ran}"
    assert sum(1 for report in reports if report["ran"]) >= 2, "the workers did not share the work"
    # Each worker's results file is the study as it saw it last; the storage holds the final state.
    import optuna

    from orchestrator.search.results import build_results

    final = optuna.load_study(study_name="shared_pg_study", storage=postgres_url)
    data = build_results(final.get_trials(), study_name="shared_pg_study", storage="pg", target_trials=trials)
    last_written = max((json.loads((tmp_path / f"worker{i}" / RESULTS_FILE).read_text()) for i in range(3)),
                       key=lambda results: results["counted_trials"])
    assert "@127.0.0.1" in last_written["storage"]
    trained = [t for t in data["trials"] if t["outcome"] in ("complete", "pruned", "failed")]
    assert sorted(t["number"] for t in trained) == sorted(ran)
    assert len(trained) == data["counted_trials"] == trials
    assert all(t["outcome"] == "complete" for t in trained)
    assert not [t for t in data["trials"] if t["state"] == "running"]


def test_a_worker_killed_mid_trial_has_its_trial_requeued_and_completed_exactly_once(postgres_url: str,
                                                                                     tmp_path: Path) -> None:
    import signal

    import optuna

    from orchestrator.search.results import build_results
    from orchestrator.search.simulator import PROGRESS_FILE

    trials = 5
    study = {"storage": postgres_url, "study_name": "chaos_pg_study"}
    creator = _child(tmp_path, "creator", output=str(tmp_path / "main"), trials=0, seed=1, **study)
    assert creator.wait(timeout=120) == 0, creator.stderr.read()
    optuna.load_study(study_name="chaos_pg_study", storage=postgres_url).set_user_attr("target_trials", trials)
    beat = {"heartbeat_interval": 1, "grace_period": 3, "wall_seconds_per_epoch": 0.3, "worker": True}
    workers = [_child(tmp_path, f"worker{i}", output=str(tmp_path / f"worker{i}"), **beat, **study)
               for i in range(3)]
    deadline = time.monotonic() + 120
    victim = None
    while victim is None and time.monotonic() < deadline:
        for progress in (tmp_path / "worker0").glob(f"trials/*/{PROGRESS_FILE}"):
            try:
                state = json.loads(progress.read_text())
            except (OSError, ValueError):
                continue
            if state["epochs_done"] >= 1 and not state["finished"]:
                victim = int(progress.parent.name.removeprefix("trial_"))
        time.sleep(0.05)
    assert victim is not None, "worker 0 never trained"
    os.kill(workers[0].pid, signal.SIGKILL)
    workers[0].wait(timeout=30)
    for worker in workers[1:]:
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err[-3000:]
    final = optuna.load_study(study_name="chaos_pg_study", storage=postgres_url)
    data = build_results(final.get_trials(), study_name="chaos_pg_study", storage="pg", target_trials=trials)
    by_number = {t["number"]: t for t in data["trials"]}
    assert by_number[victim]["state"] == "fail" and by_number[victim]["retried_as_new_trial"]
    retries = [t for t in data["trials"] if t["retry_of"] == victim]
    assert len(retries) == 1 and retries[0]["outcome"] == "complete"
    assert retries[0]["params"] == by_number[victim]["params"]
    assert data["counted_trials"] == trials
    assert not [t for t in data["trials"] if t["state"] in ("running", "waiting")]
