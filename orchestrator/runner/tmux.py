"""tmux sessions for training runs, through libtmux (no tmux command strings are built here).

A run gets its own session, named after the run and made unique; the only text typed into the pane is
``shlex.join(argv)``, so paths with spaces, quotes, ``$`` or ``$(...)`` reach the program verbatim.
``socket_name`` selects a private tmux server (``tmux -L NAME``); tests always use one so that they
never touch a person's sessions. The default comes from ``$LORA_PIPELINE_TMUX_SOCKET``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path

from orchestrator.common.errors import PipelineError, UserInputError

SOCKET_ENV = "LORA_PIPELINE_TMUX_SOCKET"
POSIX_SHELL = "/bin/sh"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_\-]+")  # tmux forbids '.' and ':' in session names


class TmuxUnavailable(PipelineError):
    pass


def default_socket() -> str | None:
    return os.environ.get(SOCKET_ENV) or None


def tmux_binary() -> str | None:
    return shutil.which("tmux")


def _server(socket_name: str | None):  # type: ignore[no-untyped-def]
    import libtmux

    if tmux_binary() is None:
        raise TmuxUnavailable("tmux is not installed (apt-get install tmux)")
    return libtmux.Server(socket_name=socket_name) if socket_name else libtmux.Server()


def session_name_for(output_name: str) -> str:
    return _UNSAFE_NAME.sub("_", output_name).strip("_") or "lora_run"


def check_session_name(name: str) -> str:
    """``name`` when tmux can hold it as a session name (checked before a run writes its files)."""
    if not name or _UNSAFE_NAME.search(name):
        raise UserInputError(f"tmux session name {name!r} may hold only letters, digits, '_' and '-'",
                             key="session")
    return name


def session_exists(name: str, socket_name: str | None = None) -> bool:
    from libtmux import exc

    try:
        server = _server(socket_name)
        return server.has_session(name, exact=True)  # False when no server runs yet
    except (TmuxUnavailable, exc.BadSessionName):  # a name tmux cannot hold is no session's name
        return False


def free_session_name(base: str, socket_name: str | None = None) -> str:
    """``base``, or ``base-2``, ``base-3``... whichever does not exist yet."""
    name = session_name_for(base)
    candidate, number = name, 1
    while session_exists(candidate, socket_name):
        number += 1
        candidate = f"{name}-{number}"
    return candidate


def start_session(name: str, argv: Sequence[str], *, cwd: Path, socket_name: str | None = None,
                  width: int = 200, height: int = 50) -> None:
    """A detached session ``name`` whose shell runs ``argv`` (typed as ``shlex.join(argv)``)."""
    check_session_name(name)
    server = _server(socket_name)
    if server.has_session(name, exact=True):
        raise UserInputError(f"tmux session {name!r} already exists", key="session",
                             hint=f"attach with `tmux attach -t {name}`, kill it, or pass --session OTHER")
    # A plain POSIX sh (no rc files: starts at once, the same quoting rules as shlex) reads the
    # command. It stays after the trainer ends (a person attached meanwhile still sees the output);
    # whoever concludes the run closes the session (runner.handle.close_session).
    session = server.new_session(session_name=name, start_directory=str(cwd), attach=False,
                                 x=width, y=height, window_command=POSIX_SHELL)
    pane = session.active_window.active_pane
    assert pane is not None
    pane.send_keys(shlex.join(list(argv)), enter=True)


def kill_session(name: str, socket_name: str | None = None) -> None:
    from libtmux import exc

    try:
        server = _server(socket_name)
        if server.has_session(name, exact=True):
            server.kill_session(name)
    except TmuxUnavailable:
        return
    except exc.LibTmuxException:
        # The session (or the whole server, with its last session) may end by itself between the check
        # and the kill: that is the result asked for. Anything else is a real error.
        if server.is_alive() and server.has_session(name, exact=True):
            raise


def capture_pane(name: str, socket_name: str | None = None, lines: int = 40) -> list[str]:
    """The last ``lines`` lines shown in the session's pane (for a trainer that never started)."""
    from libtmux import exc

    try:
        server = _server(socket_name)
        session = server.sessions.get(session_name=name, default=None)
        if session is None:
            return []
        pane = session.active_window.active_pane
        return [line for line in pane.capture_pane() if line.strip()][-lines:] if pane else []
    except (TmuxUnavailable, exc.LibTmuxException):  # a session or pane that vanished has nothing to show
        return []


def kill_server(socket_name: str) -> None:
    """Stop a private tmux server (tests' teardown); never called for the default server."""
    if not socket_name:
        raise ValueError("refusing to kill the default tmux server")
    from libtmux import exc

    try:
        server = _server(socket_name)
        server.kill()  # libtmux itself ignores a server that is not running
    except TmuxUnavailable:
        return
    except exc.LibTmuxException:
        if server.is_alive():  # not one that exited while being killed ("server exited unexpectedly")
            raise
