"""tmux errors: what means "no session" reads as no session; any other failure reaches the caller."""

from __future__ import annotations

import shutil

import pytest

from orchestrator.runner import tmux

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class BrokenServer:
    def has_session(self, *args, **kwargs):
        raise OSError("tmux crashed")

    @property
    def sessions(self):
        raise RuntimeError("not a tmux problem")


@pytest.fixture
def broken_server(monkeypatch):
    monkeypatch.setattr(tmux, "_server", lambda socket_name: BrokenServer())


def test_a_failure_that_is_not_about_a_missing_session_is_not_swallowed(broken_server):
    with pytest.raises(OSError, match="tmux crashed"):
        tmux.session_exists("run", "i21-broken")
    with pytest.raises(RuntimeError, match="not a tmux problem"):
        tmux.capture_pane("run", "i21-broken")


@needs_tmux
def test_no_server_and_no_session_read_as_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("TMUX_TMPDIR", str(tmp_path))
    socket = "i21-no-server"
    assert tmux.session_exists("run", socket) is False
    assert tmux.session_exists("bad.name:here", socket) is False
    assert tmux.capture_pane("run", socket) == []
    tmux.kill_server(socket)  # nothing running: quiet


@needs_tmux
def test_a_vanished_session_shows_no_lines(tmp_path, monkeypatch):
    monkeypatch.setenv("TMUX_TMPDIR", str(tmp_path))
    socket = "i21-vanished"
    try:
        tmux.start_session("short", ["sleep", "30"], cwd=tmp_path, socket_name=socket)
        assert tmux.session_exists("short", socket)
        tmux.kill_session("short", socket)
        assert tmux.capture_pane("short", socket) == [] and not tmux.session_exists("short", socket)
    finally:
        tmux.kill_server(socket)


class ExitingServer:
    """A server whose last session ends while it is being killed: libtmux reports the exit as an error."""

    def __init__(self, alive_after: bool) -> None:
        self.alive_after = alive_after

    def kill(self):
        from libtmux import exc

        raise exc.LibTmuxException(["server exited unexpectedly"])

    def has_session(self, *args, **kwargs):
        return True

    def kill_session(self, name):
        return self.kill()

    def is_alive(self):
        return self.alive_after


@needs_tmux
def test_a_server_that_exits_while_being_killed_is_killed(monkeypatch):
    from libtmux import exc

    monkeypatch.setattr(tmux, "_server", lambda socket_name: ExitingServer(alive_after=False))
    tmux.kill_server("i21-exiting")
    tmux.kill_session("run", "i21-exiting")
    monkeypatch.setattr(tmux, "_server", lambda socket_name: ExitingServer(alive_after=True))
    with pytest.raises(exc.LibTmuxException):
        tmux.kill_server("i21-still-there")
    with pytest.raises(exc.LibTmuxException):
        tmux.kill_session("run", "i21-still-there")
