"""A seeded chaos run of the search: kill -9 the orchestrator, the trainer or both at random moments,
resume as the README says (run the same command again), and check the invariants after every event.

Real Optuna on SQLite, real tmux on a private socket (``tmux -L``), the sd-scripts test double with slow
steps, the real executor and evaluator (tiny random CLIP). Used by ``test_search_chaos.py`` (a few
events) and ``bench/search_chaos.py`` (20 and more).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from tiny_search import TINY_BASE, TINY_SPACE  # its users put this folder on sys.path

from orchestrator.runner import tmux
from orchestrator.runner.files import RunFiles, pid_alive
from orchestrator.search import results as res

CHILD = Path(__file__).with_name("kohya_child.py")
STUDY = "chaos"  # every round reuses the study name in a fresh folder (issue 13, hole 2)
SPACE, BASE = TINY_SPACE, TINY_BASE
KINDS = ("orchestrator", "trainer", "both", "orchestrator_twice")
# Where a kill of the orchestrator is aimed; ask, evaluate and tell are named by the child (kohya_child.mark_phases).
PHASES = ("ask", "train", "evaluate", "tell")
# With a scheduler, also where runs pause and resume (kohya_child._mark_schedule_phases names them).
SCHEDULE_PHASES = ("pause", "paused", "resume")
PHASE_DWELL = 0.5  # seconds the child lingers at a phase's edges
_EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+)$")
_SAVED_LINE = re.compile(r"^saving checkpoint: ")


@dataclass
class ChaosReport:
    events: list[str] = field(default_factory=list)
    checks: int = 0
    violations: list[str] = field(default_factory=list)
    rounds: int = 0

    def check(self, ok: bool, message: str) -> None:
        self.checks += 1
        if not ok:
            self.violations.append(message)


def _images(folder: Path, count: int, shade: int) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.new("RGB", (64, 64), (shade, 40 * index, 120)).save(folder / f"img_{index}.png")
        (folder / f"img_{index}.txt").write_text("luca, a boy", encoding="utf-8")
    return folder


def prepare_world(root: Path) -> None:
    _images(root / "data" / "2_luca", 3, 200)
    _images(root / "references", 2, 180)
    (root / "models" / "sd15-random").mkdir(parents=True, exist_ok=True)
    (root / "prompts.txt").write_text("luca, a boy --w 64 --h 64 --d 7 --s 2\n"
                                      "luca, running on a beach --w 64 --h 64 --d 8 --s 2\n", encoding="utf-8")


class Chaos:
    def __init__(self, root: Path, *, seed: int, trials: int = 3, step_seconds: float = 0.4,
                 scheduler: str = "none", focus: tuple[str, ...] = ()) -> None:
        """``focus``: kill only the orchestrator, only in these phases (a short run that must hit them)."""
        self.root, self.rng, self.trials, self.scheduler = root, random.Random(seed), trials, scheduler
        self.phases = focus or (PHASES if scheduler == "none" else (*PHASES, *SCHEDULE_PHASES, *SCHEDULE_PHASES))
        self.kinds = ("orchestrator", "orchestrator_twice") if focus else KINDS
        self.socket = f"lp-chaos-{uuid.uuid4().hex[:8]}"
        self.env = {**os.environ, tmux.SOCKET_ENV: self.socket, "FAKE_SD_SCRIPTS_STEP_SECONDS": str(step_seconds),
                    "FAKE_SD_SCRIPTS_MODE": "", "HF_HUB_OFFLINE": "1",
                    "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                   os.environ.get("PYTHONPATH", "")])}
        self.report = ChaosReport()
        prepare_world(root)

    # ---------------------------------------------------------------------------------- processes
    def start(self, output: Path) -> subprocess.Popen:
        options = self.root / f"child_{time.monotonic_ns()}.json"
        self._phase_file(output).write_text("")  # a killed child's last phase is not the new one's
        options.write_text(json.dumps({"output": str(output), "root": str(self.root), "socket": self.socket,
                                       "space": SPACE, "base": BASE, "trials": self.trials, "seed": 0,
                                       "study_name": STUDY, "stop_timeout": 10.0, "patience": 0,
                                       "phase_file": str(self._phase_file(output)), "phase_dwell": PHASE_DWELL,
                                       "claim_seconds": 3.0, "scheduler": self.scheduler}))
        return subprocess.Popen([sys.executable, str(CHILD), str(options)], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def live_trainers(self, output: Path) -> list[int]:
        pids = []
        for run_dir in output.glob("trials/*/run"):
            trainer = RunFiles(run_dir).read(RunFiles(run_dir).trainer) or {}
            if pid_alive(trainer.get("pid")):
                pids.append(int(trainer["pid"]))
        return pids

    def wait_until_busy(self, output: Path, child: subprocess.Popen, timeout: float = 90.0) -> None:
        """Until the (re)started orchestrator has loaded and a trainer runs (or it has ended): a kill
        while Python is still importing would test nothing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and child.poll() is None and not self.live_trainers(output):
            time.sleep(0.1)

    def _phase_file(self, output: Path) -> Path:
        return self.root / f"phase_{output.name}"

    def phase(self, output: Path) -> str:
        """Where the orchestrator is: the phase it names (ask, evaluate, tell), else training when a trainer
        lives, else in between (loading, writing results)."""
        try:
            named = self._phase_file(output).read_text().strip()
        except OSError:
            named = ""
        return named or ("train" if self.live_trainers(output) else "between")

    def wait_for_phase(self, output: Path, child: subprocess.Popen, target: str, timeout: float = 20.0) -> str:
        """Until the orchestrator is in ``target`` (or ``timeout`` passes, or it ended); the phase it is in."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and child.poll() is None and self.phase(output) != target:
            time.sleep(0.02)
        if self.phase(output) == target and target != "train":
            time.sleep(self.rng.uniform(0.0, PHASE_DWELL * 0.8))  # somewhere inside it
        return self.phase(output)

    # ------------------------------------------------------------------------------------- events
    def run(self, events: int, *, timeout: float = 900.0) -> ChaosReport:
        deadline = time.monotonic() + timeout
        try:
            while len(self.report.events) < events and time.monotonic() < deadline:
                self.report.rounds += 1
                output = self.root / f"round_{self.report.rounds}"
                child = self.start(output)
                while time.monotonic() < deadline:
                    self.wait_until_busy(output, child)
                    time.sleep(self.rng.uniform(0.0, 1.0))  # then inject aims at a phase
                    if child.poll() is not None:
                        break
                    if len(self.report.events) >= events:
                        child.wait(timeout=300)
                        break
                    child = self.inject(output, child)
                    self.check_invariants(output)
                self.finish(output, child)
        finally:
            tmux.kill_server(self.socket)
        return self.report

    def inject(self, output: Path, child: subprocess.Popen) -> subprocess.Popen:
        kind = self.rng.choice(self.kinds)
        target = "train" if kind in ("trainer", "both") else self.rng.choice(self.phases)
        phase = self.wait_for_phase(output, child, target)
        if child.poll() is not None:
            return child  # the round ended while waiting: nothing to kill
        trainers = self.live_trainers(output)
        if kind == "trainer" and not trainers:
            kind = "orchestrator"
        if kind in ("trainer", "both"):
            for pid in trainers:
                os.kill(pid, signal.SIGKILL)
        if kind in ("orchestrator", "both", "orchestrator_twice"):
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
            child = self.start(output)  # the documented resume: the same command again
        if kind == "orchestrator_twice":
            time.sleep(self.rng.uniform(1.0, 4.0))  # long enough to load and re-adopt, sometimes
            if child.poll() is None:
                os.kill(child.pid, signal.SIGKILL)
                child.wait(timeout=30)
                child = self.start(output)
        self.report.events.append(f"{kind} during {phase}")
        return child

    def finish(self, output: Path, child: subprocess.Popen) -> None:
        _, err = child.communicate(timeout=600)
        self.report.check(child.returncode == 0, f"{output.name}: the search exited {child.returncode}: {err[-800:]}")
        self.check_invariants(output, final=True)

    # --------------------------------------------------------------------------------- invariants
    def check_invariants(self, output: Path, *, final: bool = False) -> None:
        report, name = self.report, output.name
        self.check_trainers(output)
        for run_dir in output.glob("trials/*/run"):
            trial = run_dir.parent.name
            launches = self._launches(run_dir)
            fresh = [log for log, reason in launches if reason != "resume"]
            report.check(len(fresh) <= 1, f"{name}/{trial}: trained {len(fresh)} times from the start")
            completed = [epoch for log, _ in launches for epoch in _completed_epochs(log)]
            report.check(len(completed) == len(set(completed)),
                         f"{name}/{trial}: an epoch was trained twice ({sorted(completed)})")
        self.check_paused_states(output)
        results_path = output / res.RESULTS_FILE
        if not results_path.is_file():
            report.check(not final, f"{name}: no {res.RESULTS_FILE} at the end")
            return
        try:
            data = json.loads(results_path.read_text(encoding="utf-8"))
        except ValueError as error:
            report.check(False, f"{name}: {res.RESULTS_FILE} does not parse: {error}")
            return
        report.check(True, "parses")
        study = self.load_study(output)
        trials = study.get_trials(deepcopy=False)
        counted = len(res.counted_trials(trials))
        report.check(counted <= self.trials, f"{name}: {counted} counted trials, more than {self.trials}")
        for entry in data["trials"]:
            if entry["outcome"] == "failed":
                report.check(bool(entry["reason"]), f"{name}: failed trial {entry['number']} names no cause")
        if final:
            expected = res.build_results(trials, study_name=STUDY, storage="", target_trials=self.trials)
            report.check(counted == self.trials, f"{name}: {counted} counted trials, not {self.trials}")
            report.check(data["counted_trials"] == expected["counted_trials"] and data["counts"] == expected["counts"],
                         f"{name}: {res.RESULTS_FILE} {data['counts']} disagrees with the study {expected['counts']}")
            report.check(not [t for t in trials if not t.state.is_finished()], f"{name}: unfinished trials left")
            self.check_paused_states(output, final=True)
            left = _sessions(self.socket)
            report.check(not left, f"{name}: idle tmux sessions left: {left}")

    def check_trainers(self, output: Path) -> None:
        self.report.check(len(self.live_trainers(output)) <= 1, f"{output.name}: two trainers alive for one GPU")

    def load_study(self, output: Path) -> optuna.Study:
        return optuna.load_study(study_name=STUDY, storage=f"sqlite:///{output / 'optuna_study.db'}")

    def check_paused_states(self, output: Path, *, final: bool = False) -> None:
        """No paused state lost: a paused run has its state of the epoch it paused at on disk; at the end,
        every run that ever paused was resumed to its end or closed at its best (never failed and re-queued,
        which would train its epochs again in another trial)."""
        from orchestrator.kohya.train_state import newest_state
        from orchestrator.search import vocabulary as vocab

        if self.scheduler == "none" or not (output / "optuna_study.db").is_file():
            return
        for trial in self.load_study(output).get_trials(deepcopy=False):
            attrs, label = trial.user_attrs, f"{output.name}/trial {trial.number}"
            if attrs.get(vocab.PAUSED_AT_ATTR) is None:
                continue
            if trial.state == optuna.trial.TrialState.RUNNING and attrs.get(vocab.PHASE_ATTR) == vocab.PHASE_PAUSED:
                run_dir = Path(str(attrs.get(vocab.DIRECTORY_ATTR))) / "run"
                try:
                    output_name = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["output_name"]
                    state = newest_state(run_dir, output_name)
                except (OSError, ValueError, KeyError):
                    state = None
                self.report.check(state is not None and state.epoch == int(attrs[vocab.PAUSED_AT_ATTR]),
                                  f"{label}: paused at epoch {attrs[vocab.PAUSED_AT_ATTR]} but its state is "
                                  f"{'gone' if state is None else f'of epoch {state.epoch}'}")
            segments = attrs.get(vocab.SEGMENTS_ATTR) or []
            starts = [segment[3] for segment in segments if len(segment) > 3 and segment[3]]
            self.report.check(len(starts) == len(set(starts)), f"{label}: a segment recorded twice {segments}")
            spent = round(sum(float(segment[2]) for segment in segments), 1)
            self.report.check(abs(spent - float(attrs.get(vocab.GPU_SECONDS_ATTR) or 0.0)) < 0.2,
                              f"{label}: {attrs.get(vocab.GPU_SECONDS_ATTR)} GPU seconds, its segments {spent}")
            if final:
                # A run that paused ends finished or closed at its best; failed only after the retry that a
                # failed segment with a saved state is given (scheduled.SEGMENT_RETRIES), naming its cause.
                retried = int(attrs.get(vocab.SEGMENT_FAILURES_ATTR) or 0) >= 1
                ok = trial.state == optuna.trial.TrialState.COMPLETE or (
                    trial.state == optuna.trial.TrialState.FAIL and retried and attrs.get(vocab.FAILURE_CAUSE_ATTR))
                self.report.check(bool(ok), f"{label}: paused once, ended {trial.state.name} "
                                            f"({attrs.get(vocab.FAILURE_CAUSE_ATTR)})")
                last = int(attrs.get(vocab.LAST_EPOCH_ATTR) or 0)
                if attrs.get(vocab.PHASE_ATTR) == vocab.PHASE_FINISHED and last:
                    self.report.check(sorted(trial.intermediate_values) == list(range(1, last + 1)),
                                      f"{label}: finished with the curve {sorted(trial.intermediate_values)}")

    @staticmethod
    def _launches(run_dir: Path) -> list[tuple[str, str | None]]:
        """The run's trainer logs in launch order, each with why it was launched (None: the first launch).
        Log files are named by trial and rounds share the logs folder, so the run's own record names them."""
        try:
            record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        relaunches = record.get("relaunches", [])
        reasons = [None, *(r.get("reason") for r in relaunches)]
        logs = [*(r.get("previous_log") for r in relaunches), record.get("log_path")]
        return [(log, reason) for log, reason in zip(logs, reasons, strict=True) if log and Path(log).is_file()]


def _completed_epochs(log: str) -> list[int]:
    """The epochs a trainer log trained to their end (the checkpoint saved): an epoch a kill cut short was
    never trained, and a resume from the state before it trains it (once)."""
    epochs, current = [], None
    for line in Path(log).read_text(encoding="utf-8", errors="replace").splitlines():
        started = _EPOCH_LINE.match(line.strip())
        if started:
            current = int(started.group(1))
        elif current is not None and _SAVED_LINE.match(line.strip()):
            epochs.append(current)
            current = None
    return epochs


def _sessions(socket: str) -> list[str]:
    listed = subprocess.run(["tmux", "-L", socket, "list-sessions", "-F", "#{session_name}"],
                            capture_output=True, text=True)
    return [line for line in listed.stdout.splitlines() if line.strip()] if listed.returncode == 0 else []
