"""The one file lock (run folders, GPUs, the queue file): exclusive across processes, names its holder,
waits as asked, and is gone when its holder dies."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.common.file_lock import FileLock, LockBusy, lock_holder

PROJECT = Path(__file__).resolve().parents[2]


def _hold(path: Path, text: str) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, sys.argv[1]);"
        "from pathlib import Path; from orchestrator.common.file_lock import FileLock;"
        "FileLock(Path(sys.argv[2]), holder=sys.argv[3]).acquire(); print('held', flush=True); time.sleep(60)"),
        str(PROJECT), str(path), text], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_taker_is_refused_with_the_holders_text_and_takes_it_once_the_holder_dies(tmp_path):
    path = tmp_path / "locks" / "thing.lock"
    holder = _hold(path, '{"pid": 1, "purpose": "a test"}')
    try:
        assert lock_holder(path) == '{"pid": 1, "purpose": "a test"}'
        with pytest.raises(LockBusy) as refused:
            FileLock(path, holder="second").acquire()
        assert refused.value.holder == '{"pid": 1, "purpose": "a test"}' and refused.value.path == path
    finally:
        holder.kill()
        holder.wait()
    with FileLock(path, holder="after the kill"):  # the kernel dropped the dead holder's lock
        assert path.read_text() == "after the kill"
    assert lock_holder(path) is None


def test_a_wait_gives_up_after_its_seconds_and_no_wait_blocks_until_free(tmp_path):
    path = tmp_path / "thing.lock"
    holder = _hold(path, "busy")
    try:
        started = time.monotonic()
        with pytest.raises(LockBusy):
            FileLock(path, wait=0.3).acquire()
        assert 0.25 <= time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()
    with FileLock(path, wait=None):
        pass


def test_asking_who_holds_a_missing_lock_creates_nothing(tmp_path):
    assert lock_holder(tmp_path / "absent.lock") is None
    assert not (tmp_path / "absent.lock").exists()
