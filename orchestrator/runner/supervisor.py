"""Runs inside the tmux pane: starts the trainer, copies its output to the log and the pane, records its exit.

Started as ``python supervisor.py SPEC.json`` (standard library only, so it runs with any Python and
starts in milliseconds). The spec names the trainer's argv, cwd, its environment (``env_file``: the
launcher's whole environment; ``env``: what the run sets on top), the log file, the run's lock file and
the folder for the status files:

- ``trainer.json``: ``{"pid", "pgid", "supervisor_pid", "started_at", "started_unix"}`` once the trainer
  runs; the trainer leads a process group of its own (``pgid``), so a stop reaches every process of an
  ``accelerate launch`` with several GPUs, and a SIGKILL of that group leaves the supervisor alive to
  record the exit;
- ``exit.json``: ``{"exit_code", "signal", "finished_at", "finished_unix", "cpu_seconds", "error"}`` when
  it has ended (``cpu_seconds``: the trainer's user + system time).

The supervisor holds an exclusive ``flock`` on the run's lock file for as long as the trainer lives, so
a second run on the same folder is refused even after the orchestrator that started this one died.
The trainer's output is a pipe, not the pane's terminal, so the log holds every byte whatever the
pane's width, and nothing the trainer prints is interpreted by a shell.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

LOCK_WAIT_SECONDS = 60.0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_json(path: str, data: dict) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _acquire_lock(lock_path: str) -> int | None:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        except BlockingIOError:
            # The launcher holds the lock until the pane has our command; anyone else is another run.
            if time.monotonic() > deadline:
                os.close(fd)
                return None
            time.sleep(0.1)


def _echo(data: bytes, state: dict) -> None:
    if not state["echo"]:
        return
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except OSError:  # the pane is gone (tmux session killed): keep logging
        state["echo"] = False


def main(spec_path: str) -> int:
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    status_dir = spec["status_dir"]
    exit_file = os.path.join(status_dir, "exit.json")
    lock_fd = _acquire_lock(spec["lock_path"])
    if lock_fd is None:
        message = f"another run holds {spec['lock_path']}; not starting"
        print(message, file=sys.stderr)
        _write_json(exit_file, {"exit_code": None, "signal": None, "finished_at": _now(), "error": message})
        return 75
    # The launcher's environment, not this pane's: a tmux server keeps the environment it started with.
    env = dict(os.environ)
    if spec.get("env_file"):
        with open(spec["env_file"], encoding="utf-8") as handle:
            env = json.load(handle)
    env.update(spec.get("env", {}))
    log = open(spec["log_path"], "ab", buffering=0)
    try:
        child = subprocess.Popen(spec["argv"], cwd=spec["cwd"], env=env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 start_new_session=True)  # its own group (Python 3.10 has no process_group=)
    except OSError as error:
        message = f"cannot start the trainer {spec['argv'][0]!r}: {error}"
        log.write((message + "\n").encode())
        print(message, file=sys.stderr)
        _write_json(exit_file, {"exit_code": 127, "signal": None, "finished_at": _now(), "error": message})
        return 127

    def forward(signum: int, _frame: object) -> None:
        # The trainer is not in the pane's foreground group: Ctrl-C in the pane, and a TERM/HUP sent to
        # the supervisor alone (the session closed), are passed on so the trainer is never orphaned.
        try:
            os.killpg(child.pid, signum)
        except OSError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    _write_json(os.path.join(status_dir, "trainer.json"),
                {"pid": child.pid, "pgid": child.pid, "supervisor_pid": os.getpid(), "started_at": _now(),
                 "started_unix": time.time()})
    state = {"echo": True}
    assert child.stdout is not None
    fd = child.stdout.fileno()
    while True:
        try:
            data = os.read(fd, 65536)
        except InterruptedError:
            continue
        if not data:
            break
        log.write(data)
        _echo(data, state)
    while True:
        try:
            _, status, usage = os.wait4(child.pid, 0)  # wait4: the trainer's CPU time comes with it
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    child.returncode = code
    log.close()
    _write_json(exit_file, {"exit_code": code if code >= 0 else None, "signal": -code if code < 0 else None,
                            "finished_at": _now(), "finished_unix": time.time(),
                            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2), "error": None})
    os.close(lock_fd)
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
