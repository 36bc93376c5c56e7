"""What do several GPUs buy a search on one machine? Wall-clock with real worker processes, GPU-hours on a
simulated clock.

1. Wall-clock to 20 finished trials, 4 simulated GPUs against 1: `search run --parallel-gpus` as it runs for
   real (the journal-file study, one worker process per GPU holding its GPU lock, the WorkerPool that
   starts and watches them), with the simulator's trainer sleeping its epoch cost scaled down
   (``--seconds-per-gpu-hour``). Both runs train the same 20 enqueued safe configurations to their last
   epoch (no pruning), so the ratio is the machinery's and the last round's, not the luck of the draws
   (part 2 measures the sampler). Timed from the pool's start, worker start-up included, to the 20th
   counted trial. Target: 4 GPUs at least 3.5x faster.
2. GPU-hours until a completed trial is within 2% of the best reachable score, with 4 trials in flight
   against 1 (target: within 10%), and the same with TPE's constant liar off. Four `Search` loops share
   one in-memory study; a virtual clock lets only the loop that is furthest behind in GPU time go on, so
   every ask, report, prune and tell happens in the order it would on four real GPUs, without the wait.
   The response surface is ``orchestrator/search/surfaces.py``'s ``QuadraticSurface``; the best reachable
   score is ``bench/search_efficiency.py``'s (a property of the surface alone).

Run: PYTHONPATH=. .venv/bin/python bench/parallel_search.py [--seeds 12] [--seconds-per-gpu-hour 1.6]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from search_efficiency import BASE, SPACE, WITHIN, RandomSuggest, best_reachable, flat_config, safe_score  # noqa: E402

from orchestrator.search.choices import DEFAULT_SCHEDULER, SCHEDULER_KINDS  # noqa: E402
from orchestrator.search.executor import SearchAborted  # noqa: E402
from orchestrator.search.merge import flatten_training_tables  # noqa: E402
from orchestrator.search.simulator import SimulatedExecutor  # noqa: E402
from orchestrator.search.space import load_search_space  # noqa: E402
from orchestrator.search.surfaces import QuadraticSurface, trial_sample_epochs  # noqa: E402
from orchestrator.search.vocabulary import GPU_SECONDS_ATTR  # noqa: E402

TRIALS = 20
BUDGET_HOURS = 400.0  # GPU-hours of a run that never reaches the target (as bench/search_efficiency.py)


class PacedExecutor(SimulatedExecutor):
    """The simulator, with the GPU time of each stretch of epochs handed to ``spend(seconds)`` before that
    stretch's score is reported: a sleep (wall-clock bench) or the virtual clock (GPU-hour bench)."""

    def __init__(self, spend, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.spend = spend

    def run(self, request, report):  # type: ignore[no-untyped-def]
        if request.resume_from is not None:  # the start-up of a resumed run (the simulator charges it too)
            self.spend(self.resume_seconds)
        flat = {**flatten_training_tables(request.config), **request.params}
        evaluated, last = set(trial_sample_epochs(flat)), {"epoch": 0}

        def paced(epoch, score, validation_loss=None):  # type: ignore[no-untyped-def]
            cost = self.surface.epoch_cost(flat) * (epoch - last["epoch"])
            self.spend(cost + (self.surface.seconds_per_evaluation if epoch in evaluated else 0.0))
            last["epoch"] = epoch
            return report(epoch, score, validation_loss)

        return super().run(request, paced)


# ------------------------------------------------------------------------- 1. wall-clock, processes
def worker_main(options_file: str, gpu: str) -> None:
    from orchestrator.search.parallel import run_gpu_worker
    from orchestrator.search.study import load_worker_settings

    options = json.loads(Path(options_file).read_text())
    settings = load_worker_settings(options["storage"], options["study_name"], Path(options["output"]), gpus=gpu,
                                    own_gpu_orphans_only=True)
    scale = options["seconds_per_gpu_second"]
    run_gpu_worker(settings, PacedExecutor(lambda seconds: time.sleep(seconds * scale), record_progress=False))


def fixed_trials(seed: int) -> list[dict]:
    """20 safe configurations drawn at random: both runs train the same ones, so the comparison measures
    the parallel machinery (and the tail of the last round), not which configs a sampler happened to draw."""
    import random

    space, surface, rng = load_search_space(SPACE), QuadraticSurface(seed=seed), random.Random(seed)
    chosen: list[dict] = []
    while len(chosen) < TRIALS:
        params = space.sample(RandomSuggest(rng))
        if safe_score(space, surface, params) is not None:
            chosen.append(params)
    return chosen


def ideal_seconds(gpus: int, seed: int, seconds_per_gpu_hour: float) -> float:
    """The wall-clock of the fixed trials with no overhead at all: each free GPU takes the next one."""
    import heapq

    space, surface = load_search_space(SPACE), QuadraticSurface(seed=seed)
    finish = [0.0] * gpus
    for params in fixed_trials(seed):
        flat = flat_config(space, params)
        cost = surface.epoch_cost(flat) * int(flat["max_train_epochs"])
        cost += surface.seconds_per_evaluation * len(trial_sample_epochs(flat))
        heapq.heappush(finish, heapq.heappop(finish) + cost / 3600 * seconds_per_gpu_hour)
    return max(finish)


def wall_clock(gpus: int, seed: int, seconds_per_gpu_hour: float) -> tuple[float, float]:
    """(seconds to the 20th counted trial, simulated GPU-hours of those trials) with ``gpus`` workers."""
    from orchestrator.runner.gpu_lock import GPU_LOCK_DIR_ENV
    from orchestrator.search.parallel import WorkerPool, study_state_of
    from orchestrator.search.results import counted_trials
    from orchestrator.search.storage import journal_url
    from orchestrator.search.study import Search, SearchSettings

    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "search"
        os.environ[GPU_LOCK_DIR_ENV] = str(Path(folder) / "gpu_locks")
        settings = SearchSettings(space=load_search_space(SPACE), base_config=BASE, output=output, trials=TRIALS,
                                  seed=seed, storage_url=journal_url(output / "optuna_journal.log"),
                                  study_name=f"wall_{gpus}", pruner="none", patience=0)
        search = Search(settings, SimulatedExecutor())
        for params in fixed_trials(seed):
            search.study.enqueue_trial(params)
        options = Path(folder) / "options.json"
        options.write_text(json.dumps({"storage": settings.storage, "study_name": settings.study_name,
                                       "output": str(output), "seconds_per_gpu_second": seconds_per_gpu_hour / 3600}))
        argv = [sys.executable, str(Path(__file__).resolve()), "--worker", str(options)]
        pool = WorkerPool(list(range(gpus)), lambda gpu: [*argv, str(gpu)], log_folder=output / "workers",
                          study_state=lambda: study_state_of(search.study, TRIALS), poll_seconds=0.2,
                          say=lambda _: None, env={**os.environ, "PYTHONPATH": str(ROOT)})
        started = time.perf_counter()
        outcome = pool.run()
        assert outcome.done, f"the {gpus}-GPU search did not finish: {[s.broken for s in outcome.slots]}"
        counted = sorted(counted_trials(search.study.get_trials()), key=lambda t: t.datetime_complete)
        twentieth = counted[TRIALS - 1].datetime_complete.timestamp()
        first_start = time.time() - (time.perf_counter() - started)
        hours = sum(float(t.user_attrs.get(GPU_SECONDS_ATTR) or 0.0) for t in counted) / 3600
        return twentieth - first_start, hours


# ---------------------------------------------------------------------- 2. GPU-hours, virtual clock
class VirtualClock:
    """Lets the worker that is furthest behind in GPU time run; the others wait in :meth:`spend`."""

    def __init__(self, workers: int) -> None:
        self.now = dict.fromkeys(range(workers), 0.0)
        self.active = set(self.now)
        self.condition = threading.Condition()
        self.spent: list[tuple[int, float, float]] = []  # (worker, from, to) in GPU-seconds

    def spend(self, worker: int, seconds: float) -> None:
        with self.condition:
            start = self.now[worker]
            self.now[worker] = start + seconds
            self.spent.append((worker, start, start + seconds))
            self.condition.notify_all()
            self.condition.wait_for(lambda: self._is_next(worker))

    def time_of(self, worker: int) -> float:
        return self.now[worker]

    def _is_next(self, worker: int) -> bool:
        return (self.now[worker], worker) <= min((self.now[w], w) for w in self.active)

    def leave(self, worker: int) -> None:
        with self.condition:
            self.active.discard(worker)
            self.condition.notify_all()

    def hours_before(self, moment: float) -> float:
        return sum(max(0.0, min(end, moment) - start) for _, start, end in self.spent) / 3600


def gpu_hours_to_target(seed: int, in_flight: int, target: float, *, constant_liar: bool = True,
                        **strategy) -> float:
    import optuna

    from orchestrator.search.sampling import STARTUP_TRIALS, TrainedStartupTPESampler
    from orchestrator.search.study import Search, SearchSettings

    space, surface = load_search_space(SPACE), QuadraticSurface(seed=seed)
    storage = optuna.storages.InMemoryStorage()
    clock = VirtualClock(in_flight)
    # One machine: every worker can read every paused run's state (the scheduler resumes it on any free GPU).
    saved_states: dict = {}
    trained_epochs: dict = {}
    reached: list[float] = []  # virtual times at which a completed trial within the target finished
    stop = threading.Event()

    class Worker(PacedExecutor):
        def run(self, request, report):  # type: ignore[no-untyped-def]
            if stop.is_set() or clock.hours_before(math.inf) >= BUDGET_HOURS:
                raise SearchAborted("target reached or budget spent")
            outcome = super().run(request, report)
            if outcome.failure_cause is None and not outcome.stopped_early and outcome.best_epoch is not None:
                if surface.best_sampled_score(flat_config(space, dict(request.params))) >= target:
                    reached.append(clock.time_of(self.worker))
                    stop.set()
            return outcome

    def loop(worker: int) -> None:
        executor = Worker(lambda seconds: clock.spend(worker, seconds), surface=surface, record_progress=False)
        executor.worker = worker
        executor.saved_states, executor.trained_epochs = saved_states, trained_epochs
        settings = SearchSettings(space=space, base_config=BASE, output=Path(output),
                                  trials=400, storage_url="memory", seed=seed * 10 + worker, write_files=False,
                                  study_name=f"flight_{seed}", **strategy)
        try:
            search = Search(settings, executor, storage=storage)
            if not constant_liar:
                search.study.sampler = TrainedStartupTPESampler(multivariate=True, n_startup_trials=STARTUP_TRIALS,
                                                                constant_liar=False, seed=seed * 10 + worker)
            search.run()
        except SearchAborted:
            pass
        finally:
            clock.leave(worker)

    output = tempfile.mkdtemp(prefix="flight_")  # no trial folders (write_files=False); the scheduler's claim lock
    threads = [threading.Thread(target=loop, args=(worker,)) for worker in range(in_flight)]
    for index, thread in enumerate(threads):
        thread.start()
        if index == 0:
            time.sleep(0.2)  # the first loop creates the study; the others join it
    for thread in threads:
        thread.join()
    return clock.hours_before(min(reached)) if reached else math.inf


def one_seed(seed: int, scheduler: str = "none") -> dict[str, float]:
    target = (1 - WITHIN) * best_reachable(load_search_space(SPACE), QuadraticSurface(seed=seed), seed)
    strategy = {"scheduler": scheduler}
    hours = {"1 in flight": gpu_hours_to_target(seed, 1, target, **strategy),
             "4 in flight": gpu_hours_to_target(seed, 4, target, **strategy)}
    if scheduler == "none":
        hours["4, no liar"] = gpu_hours_to_target(seed, 4, target, constant_liar=False)
    return hours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=12, help="surfaces for the GPU-hour comparison")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--seconds-per-gpu-hour", type=float, default=1.6,
                        help="wall seconds one simulated GPU-hour of training takes in the wall-clock part")
    parser.add_argument("--workers", type=int, default=2, help="processes for the GPU-hour comparison")
    parser.add_argument("--skip-wall-clock", action="store_true", help="only the GPU-hour comparison")
    parser.add_argument("--scheduler", choices=SCHEDULER_KINDS, default=DEFAULT_SCHEDULER,
                        help="the GPU-hour comparison's scheduler, as `search --scheduler` (default %(default)s)")
    parser.add_argument("--worker", nargs=2, metavar=("OPTIONS", "GPU"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(*args.worker)
        return
    from orchestrator.search.optuna_adapter import quiet_optuna_notices

    quiet_optuna_notices()
    started = time.perf_counter()
    if not args.skip_wall_clock:
        one, one_hours = wall_clock(1, args.first_seed, args.seconds_per_gpu_hour)
        four, four_hours = wall_clock(4, args.first_seed, args.seconds_per_gpu_hour)
        print(f"wall-clock to {TRIALS} finished trials ({args.seconds_per_gpu_hour:g} s per simulated GPU-hour): "
              f"1 GPU {one:.1f} s ({one_hours:.0f} GPU-h), 4 GPUs {four:.1f} s ({four_hours:.0f} GPU-h): "
              f"{one / four:.2f}x faster (target >= 3.5x)", flush=True)
    bound = [ideal_seconds(gpus, args.first_seed, args.seconds_per_gpu_hour) for gpus in (1, 4)]
    print(f"  without any overhead: 1 GPU {bound[0]:.1f} s, 4 GPUs {bound[1]:.1f} s ({bound[0] / bound[1]:.2f}x: "
          "the last round's tail); the rest is start-up and per-trial bookkeeping (journal, results file)")
    if not args.seeds:
        return
    with ProcessPoolExecutor(args.workers) as pool:
        seed_range = range(args.first_seed, args.first_seed + args.seeds)
        seeds = list(pool.map(one_seed, seed_range, [args.scheduler] * args.seeds))
    print(f"\nGPU-hours until a completed trial is within {WITHIN:.0%} of the best reachable score, "
          f"{args.seeds} seeds from {args.first_seed} (budget {BUDGET_HOURS:.0f} GPU-h, scheduler {args.scheduler}):")
    medians = {}
    for name in seeds[0]:
        hours = sorted(s[name] for s in seeds)
        medians[name] = statistics.median(hours)
        reached = sum(math.isfinite(h) for h in hours)
        print(f"  {name:<12} median {medians[name]:6.1f}  (p25-p75 {hours[len(hours) // 4]:.0f}-"
              f"{hours[(3 * len(hours)) // 4]:.0f}), reached on {reached}/{len(hours)}")
    for name in [name for name in ("4 in flight", "4, no liar") if name in medians]:
        ratio = medians[name] / medians["1 in flight"]
        print(f"  {name} / 1 in flight: {ratio:.2f} (target within 10%: 0.90-1.10)")
    print(f"bench wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
