"""The chaos run of tests/search/chaos.py for `search run --parallel-gpus` with N workers on N fake GPUs.

Events: kill -9 the parent (every worker dies with it; the resume is the same command again), one worker
(the parent starts a new one for its GPU), the trainers, or both. Invariants: those of ``Chaos``, with
"never two trainers alive for one GPU" read from each live trainer's CUDA_VISIBLE_DEVICES, on the
journal-file study.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import psutil
from chaos import BASE, SPACE, STUDY, Chaos

from orchestrator.runner.files import RunFiles, pid_alive
from orchestrator.runner.gpu_lock import GPU_LOCK_DIR_ENV
from orchestrator.search.storage import journal_url, make_storage

CHILD = Path(__file__).with_name("parallel_kohya_child.py")
KINDS = ("orchestrator", "worker", "trainer", "both")


class ParallelChaos(Chaos):
    def __init__(self, root: Path, *, seed: int, gpus: int = 3, trials: int = 5, step_seconds: float = 0.4) -> None:
        super().__init__(root, seed=seed, trials=trials, step_seconds=step_seconds)
        self.gpus = list(range(gpus))
        self.env[GPU_LOCK_DIR_ENV] = str(root / "gpu_locks")

    def start(self, output: Path) -> subprocess.Popen:
        options = self.root / f"parallel_{time.monotonic_ns()}.json"
        options.write_text(json.dumps({"output": str(output), "root": str(self.root), "socket": self.socket,
                                       "space": SPACE, "base": BASE, "trials": self.trials, "seed": 0,
                                       "study_name": STUDY, "stop_timeout": 10.0, "patience": 0,
                                       "gpus": self.gpus}))
        return subprocess.Popen([sys.executable, str(CHILD), str(options)], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def trainers_by_gpu(self, output: Path) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for run_dir in output.glob("trials/*/run"):
            trainer = RunFiles(run_dir).read(RunFiles(run_dir).trainer) or {}
            if pid_alive(trainer.get("pid")):
                spec = RunFiles(run_dir).read(RunFiles(run_dir).spec) or {}
                gpu = str(spec.get("env", {}).get("CUDA_VISIBLE_DEVICES", "?"))
                found.setdefault(gpu, []).append(int(trainer["pid"]))
        return found

    def check_trainers(self, output: Path) -> None:
        for gpu, pids in self.trainers_by_gpu(output).items():
            self.report.check(len(pids) <= 1 and gpu != "?", f"{output.name}: trainers {pids} alive on GPU {gpu}")

    def load_study(self, output: Path) -> optuna.Study:
        return optuna.load_study(study_name=STUDY, storage=make_storage(journal_url(output / "optuna_journal.log")))

    def inject(self, output: Path, child: subprocess.Popen) -> subprocess.Popen:
        kind = self.rng.choice(KINDS)
        phase = self.phase(output)
        trainers = self.live_trainers(output)
        workers = [p for p in psutil.Process(child.pid).children() if p.is_running()] if child.poll() is None else []
        if kind == "trainer" and not trainers or kind == "worker" and not workers:
            kind = "orchestrator"
        if kind in ("trainer", "both"):
            for pid in trainers:
                os.kill(pid, signal.SIGKILL)
        if kind == "worker":
            os.kill(self.rng.choice(workers).pid, signal.SIGKILL)  # the parent starts another one
        if kind in ("orchestrator", "both"):
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
            child = self.start(output)  # the documented resume: the same command again
        self.report.events.append(f"{kind} during {phase}")
        return child
