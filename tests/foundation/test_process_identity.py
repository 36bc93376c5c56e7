"""One identity rule for "which process owns this" (search trials, queue runners)."""

from __future__ import annotations

import subprocess
import sys

from orchestrator.common.process import ProcessIdentity
from orchestrator.queue._runner import runner_alive, runner_identity


def test_this_process_is_live_and_not_dead():
    me = ProcessIdentity.parse(ProcessIdentity.current().as_text())
    assert me is not None and me.is_live_local_process() and not me.is_dead_local_process()
    assert runner_alive(runner_identity())


def test_a_recycled_pid_is_another_process():
    me = ProcessIdentity.current()
    recycled = ProcessIdentity(me.host, me.pid, me.started - 100.0)
    assert recycled.is_dead_local_process() and not recycled.is_live_local_process()
    assert not runner_alive(recycled.as_text())


def test_an_ended_process_is_dead():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    ended = ProcessIdentity(ProcessIdentity.current().host, child.pid, 0.0)
    child.wait()
    assert ended.is_dead_local_process() and not ended.is_live_local_process()


def test_a_process_on_another_host_is_neither_dead_nor_live_from_here():
    remote = ProcessIdentity("another-machine", 1, 1.0)
    assert not remote.is_dead_local_process() and not remote.is_live_local_process()


def test_garbage_text_names_no_process():
    assert ProcessIdentity.parse("not an identity") is None
    assert not runner_alive("") and not runner_alive("12:abc")
