"""One worker of a parallel search (simulated trainer) in its own process, started by the tests' WorkerPool.

Usage: python parallel_child.py OPTIONS.json GPU
OPTIONS: storage, study_name, output, wall_seconds_per_epoch, trainer_survives, heartbeat_interval,
grace_period. Each attempt at a trial appends {gpu, pid, start, end} to TRIAL_DIR/attempts.jsonl, the
GPU the simulated trainer was pinned to, as a trainer's CUDA_VISIBLE_DEVICES would be.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from orchestrator.search.parallel import run_gpu_worker
from orchestrator.search.simulator import SimulatedExecutor
from orchestrator.search.study import load_worker_settings

ATTEMPTS = "attempts.jsonl"


class PinnedExecutor(SimulatedExecutor):
    gpu: str = ""

    def run(self, request, report):
        return self._recorded(request, lambda: super(PinnedExecutor, self).run(request, report))

    def adopt(self, request, report):
        return self._recorded(request, lambda: super(PinnedExecutor, self).adopt(request, report))

    barrier: int = 0  # wait until this many attempts have started (in any worker) before training
    barrier_folder: Path | None = None

    def _recorded(self, request, train):
        self._write(request, "start")
        if self.barrier:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and len(started_attempts(self.barrier_folder)) < self.barrier:
                time.sleep(0.05)
        outcome = train()
        self._write(request, "end", adopted=bool(outcome and outcome.adopted))
        return outcome

    def _write(self, request, event, **extra):
        with open(request.directory / ATTEMPTS, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"event": event, "gpu": self.gpu, "pid": os.getpid(), "at": time.time(),
                                     "trial": request.number, **extra}) + "\n")


def read_attempts(output: Path) -> list[dict]:
    events = []
    for path in sorted(output.glob(f"trials/*/{ATTEMPTS}")):
        events += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return events


def started_attempts(output: Path) -> list[dict]:
    return [event for event in read_attempts(output) if event["event"] == "start"]


def main() -> None:
    options = json.loads(Path(sys.argv[1]).read_text())
    gpu = sys.argv[2]
    settings = load_worker_settings(options["storage"], options["study_name"], Path(options["output"]),
                                    heartbeat_interval=options.get("heartbeat_interval", 60),
                                    grace_period=options.get("grace_period", 600), gpus=gpu,
                                    own_gpu_orphans_only=True)
    executor = PinnedExecutor(wall_seconds_per_epoch=options.get("wall_seconds_per_epoch", 0.0),
                              trainer_survives=options.get("trainer_survives", False))
    executor.gpu = gpu
    executor.barrier = options.get("barrier", 0)
    executor.barrier_folder = Path(options["output"])
    summary = run_gpu_worker(settings, executor)
    print(json.dumps({"counted": summary.counted_trials, "adopted": summary.adopted}))


if __name__ == "__main__":
    main()
