"""How much GPU time does the search save? Four strategies side by side on the simulator.

The simulator (``orchestrator.search.simulator``) is plugged in at the executor seam, so every
trial goes through the real search loop (Optuna ask/tell, the safety rules, the pruner, the
bookkeeping); only training + evaluation are replaced by a synthetic response surface with a
GPU-time cost model (about 1100 GPU-seconds an epoch at dim 128, plus 90 s per evaluated epoch).

Strategies, each over the same seeds (a seed moves the surface's optimum and seeds the sampler):
  random       RandomSampler, no rules, no pruning
  guide        TPE (multivariate, 5 start-up trials), no rules, no pruning   <- the guide's script
  tpe+rules    TPE, unsafe trials rejected before training
  +median      TPE, rules, median pruning after each sample epoch
  median+stop  TPE, rules, median pruning, and a run stops 2 sample epochs after its peak
               (the defaults of `lora-pipeline search` before the warm start and the catch-up pruner)
  ours         TPE, rules, catch-up pruning (stop a run once it cannot reach the best finished score),
               stop 2 sample epochs after the peak (the defaults of `lora-pipeline search`)
  ours+warm    ours with --warm-start: the study starts from the space file's preset (luca_final_v1_pure)
  ours+hb      ours with --pruner hyperband

Every strategy gets the same GPU-hour budget (``--gpu-hours``), not the same number of trials: a trial
budget would stop a strategy whose pruned trials cost half an hour each long before it had spent what
the guide spends on the same count of full runs, and call it "not reached".

Reported: GPU-hours until a completed trial is within 2% of the best reachable score, how many seeds
got there within the budget, the best score after 20 trials, the ratio to the guide with a bootstrap
interval over seeds, where the GPU-hours before the target go (start-up trials, runs that set a new
best, completed runs that did not, runs pruned by epoch 4 or later), and the search's own time between
trials (real SQLite storage, real files).
The best reachable score is a property of the surface alone: a coordinate ascent over the space's
own grid (every choice, every step, 48 points per log range), started from the best of 3000 random
safe configs, so adding or removing a strategy never moves another strategy's target.

Run: .venv/bin/python bench/search_efficiency.py [--seeds 40] [--first-seed 0] [--gpu-hours 400] [--workers 2]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.search.constraints import TrainingChoices, check_constraints  # noqa: E402
from orchestrator.search.executor import SearchAborted  # noqa: E402
from orchestrator.search.merge import flatten_training_tables, merge_trial_config  # noqa: E402
from orchestrator.search.optuna_setup import STARTUP_TRIALS  # noqa: E402
from orchestrator.search.simulator import ResponseSurface, SimulatedExecutor  # noqa: E402
from orchestrator.search.space import ParamSpec, Scalar, SearchSpace, load_search_space  # noqa: E402
from orchestrator.search.warm_start import load_warm_start  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPACE = ROOT / "configs" / "search" / "luca_tpe_v2_1.toml"
BASE = {
    "preset": {"name": "bench_base", "family": "sd15"},
    "network": {"network_module": "networks.lora"},
    "training": {"sample_every_n_epochs": 2, "seed": 42},
    "dataset": {"resolution": 512, "num_repeats": 10},
}
STRATEGIES = {
    "random": {"sampler": "random", "enforce_constraints": False, "pruner": "none", "patience": 0},
    "guide": {"sampler": "tpe", "enforce_constraints": False, "pruner": "none", "patience": 0},
    "tpe+rules": {"sampler": "tpe", "enforce_constraints": True, "pruner": "none", "patience": 0},
    "+median": {"sampler": "tpe", "enforce_constraints": True, "pruner": "median", "patience": 0},
    "median+stop": {"sampler": "tpe", "enforce_constraints": True, "pruner": "median", "patience": 2},
    "ours": {"sampler": "tpe", "enforce_constraints": True, "pruner": "catchup", "patience": 2},
    "ours+warm": {"sampler": "tpe", "enforce_constraints": True, "pruner": "catchup", "patience": 2,
                  "warm_start": True},
    "ours+hb": {"sampler": "tpe", "enforce_constraints": True, "pruner": "hyperband", "patience": 2},
}
WITHIN = 0.02
BEST_AFTER = 20
MAX_TRIALS = 400  # a safety net only: the GPU-hour budget ends every run long before


@dataclass
class TrialPoint:
    outcome: str
    value: float | None  # the best epoch's observed score of a completed trial
    noise_free: float | None  # what that trial's config reaches without observation noise
    gpu_seconds: float
    last_epoch: int | None = None  # the last scored epoch (where a pruned trial was stopped)


class BudgetedExecutor(SimulatedExecutor):
    """Refuses the next trial once ``budget_seconds`` of simulated GPU time are spent (ends the search)."""

    def __init__(self, budget_seconds: float, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.budget_seconds = budget_seconds
        self.spent = 0.0

    def run(self, request, report):  # type: ignore[no-untyped-def]
        if self.spent >= self.budget_seconds:
            raise SearchAborted("GPU-hour budget spent")
        outcome = super().run(request, report)
        self.spent += outcome.gpu_seconds
        return outcome


def run_strategy(name: str, seed: int, gpu_hours: float) -> list[TrialPoint]:
    from orchestrator.search.study import Search, SearchSettings

    space = load_search_space(SPACE)
    surface = ResponseSurface(seed=seed)
    strategy = dict(STRATEGIES[name])
    # As the CLI does: the base preset (not in the space here, so skipped) and the space file's presets.
    warm = load_warm_start(space, ROOT, base=("bench_base", BASE)).points if strategy.pop("warm_start", False) else []
    settings = SearchSettings(space=space, base_config=BASE, output=Path(tempfile.gettempdir()) / "unused",
                              trials=MAX_TRIALS, storage_url="memory", seed=seed, write_files=False,
                              study_name=f"{name}_{seed}", warm_start=tuple(warm), **strategy)
    executor = BudgetedExecutor(gpu_hours * 3600, surface=surface, record_progress=False)
    search = Search(settings, executor)
    try:
        search.run()
    except SearchAborted:
        pass  # the budget is spent
    points = []
    for trial in sorted(search.study.get_trials(deepcopy=False), key=lambda t: t.number):
        if "gpu_seconds" not in trial.user_attrs:
            continue  # never trained: rejected by a rule, or refused once the budget was spent
        outcome = trial.user_attrs.get("outcome", "")
        flat = flat_config(space, trial.params)
        complete = outcome == "complete"
        points.append(TrialPoint(outcome, trial.value if complete else None,
                                 surface.best_sampled_score(flat) if complete else None,
                                 float(trial.user_attrs.get("gpu_seconds") or 0.0), trial.last_step))
    return points


SPENDING = ("start-up", "new best", "no better", "pruned by epoch 4", "pruned later")
EARLY_PRUNE_EPOCH = 4


def where_hours_go(points: list[TrialPoint], target: float, startup: int = STARTUP_TRIALS) -> dict[str, float]:
    """GPU-hours spent until the target is reached (or the budget ends), by what the trials turned out to
    be: the start-up trials, completed runs that set a new best observed score, completed runs that did
    not, and pruned runs, early (by epoch 4) or late."""
    spent = dict.fromkeys(SPENDING, 0.0)
    best = -math.inf
    for index, point in enumerate(points):
        if index < startup:
            kind = "start-up"
        elif point.outcome != "complete":
            kind = "pruned by epoch 4" if (point.last_epoch or 0) <= EARLY_PRUNE_EPOCH else "pruned later"
        else:
            kind = "new best" if point.value is not None and point.value > best else "no better"
        spent[kind] += point.gpu_seconds / 3600
        if point.value is not None:
            best = max(best, point.value)
        if point.noise_free is not None and point.noise_free >= target:
            break
    return spent


class RandomSuggest:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def suggest_categorical(self, name, choices):  # type: ignore[no-untyped-def]
        return self.rng.choice(list(choices))

    def suggest_float(self, name, low, high, *, step=None, log=False):  # type: ignore[no-untyped-def]
        if log:
            return math.exp(self.rng.uniform(math.log(low), math.log(high)))
        if step:
            return low + step * self.rng.randint(0, round((high - low) / step))
        return self.rng.uniform(low, high)

    def suggest_int(self, name, low, high, *, step=1, log=False):  # type: ignore[no-untyped-def]
        return self.rng.randrange(low, high + 1, step)


def grid_of(spec: ParamSpec, points: int = 48) -> list[Scalar]:
    """Every value a parameter can take (choices, steps), or ``points`` values across a continuous range."""
    if spec.kind == "categorical":
        return list(spec.choices)
    if spec.step:
        return [round(spec.low + i * spec.step, 10) for i in range(round((spec.high - spec.low) / spec.step) + 1)]
    low, high = (math.log(spec.low), math.log(spec.high)) if spec.log else (spec.low, spec.high)
    values = [low + (high - low) * i / (points - 1) for i in range(points)]
    return [math.exp(v) for v in values] if spec.log else values


def flat_config(space: SearchSpace, params: dict[str, Scalar]) -> dict[str, Scalar]:
    """The flat kohya arguments a trial with ``params`` trains with: the bench's base merged with them."""
    return {**flatten_training_tables(merge_trial_config(BASE, space.training_overrides(params))), **params}


def safe_score(space: SearchSpace, surface: ResponseSurface, params: dict[str, Scalar]) -> float | None:
    """The noise-free best-epoch score of a parameter set, None when a safety rule rejects it."""
    flat = flat_config(space, params)
    if not check_constraints(TrainingChoices.from_flat_config(flat)).accepted:
        return None
    return surface.best_sampled_score(flat)


def best_reachable(space: SearchSpace, seed: int, *, samples: int = 3000, starts: int = 8) -> float:
    """The best safe noise-free score: coordinate ascent over the space's grid from the best random
    configs (the best of 3000 random ones alone falls 0.005-0.015 short)."""
    surface, rng = ResponseSurface(seed=seed), random.Random(seed)
    suggest = RandomSuggest(rng)
    scored = []
    for _ in range(samples):
        params = space.sample(suggest)
        score = safe_score(space, surface, params)
        if score is not None:
            scored.append((score, params))
    scored.sort(key=lambda item: -item[0])
    grids = {spec.name: grid_of(spec) for spec in space.parameters}
    best = scored[0][0]
    for score, params in scored[:starts]:
        improved = True
        while improved:
            improved = False
            for name, values in grids.items():
                for value in values:
                    candidate = {**params, name: value}
                    candidate_score = safe_score(space, surface, candidate)
                    if candidate_score is not None and candidate_score > score + 1e-12:
                        score, params, improved = candidate_score, candidate, True
        best = max(best, score)
    return best


def one_seed(seed: int, gpu_hours: float) -> dict:
    reference = best_reachable(load_search_space(SPACE), seed)
    target = (1 - WITHIN) * reference
    summary = {}
    for name in STRATEGIES:
        points = run_strategy(name, seed, gpu_hours)
        spending = where_hours_go(points, target)
        reached = any(p.noise_free is not None and p.noise_free >= target for p in points)
        first = points[:BEST_AFTER]
        summary[name] = {
            # Not reached within the budget: infinite, never the (smaller) hours spent, which would flatter
            # a strategy that spends little because it gives up early.
            "hours_to_target": sum(spending.values()) if reached else math.inf,
            "reached": reached,
            "best_after_20": max((p.noise_free for p in first if p.noise_free is not None), default=0.0),
            "hours_for_20": sum(p.gpu_seconds for p in first) / 3600,
            "pruned": sum(p.outcome == "pruned" for p in first),
            "spending": spending,
        }
    return {"seed": seed, "reference": reference, "strategies": summary}


def ratio_interval(seeds: list[dict], name: str, *, resamples: int = 2000) -> tuple[float, float]:
    """5th and 95th percentile of median(ours) / median(guide) over seeds drawn with replacement."""
    rng = random.Random(0)
    ratios = []
    for _ in range(resamples):
        drawn = [rng.choice(seeds) for _ in seeds]
        guide = statistics.median(s["strategies"]["guide"]["hours_to_target"] for s in drawn)
        ours = statistics.median(s["strategies"][name]["hours_to_target"] for s in drawn)
        ratios.append(ours / guide if math.isfinite(guide) else math.inf)
    ratios.sort()
    return ratios[len(ratios) // 20], ratios[(19 * len(ratios)) // 20]


def wrapper_gaps(trials: int = 12) -> list[float]:
    """Seconds between one trial's training ending and the next one's starting, with SQLite and files."""
    from orchestrator.search.study import Search, SearchSettings

    marks: list[tuple[float, float]] = []

    class Timed(SimulatedExecutor):
        def run(self, request, report):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            outcome = super().run(request, report)
            marks.append((started, time.perf_counter()))
            return outcome

    with tempfile.TemporaryDirectory() as folder:
        settings = SearchSettings(space=load_search_space(SPACE), base_config=BASE, output=Path(folder),
                                  trials=trials, seed=0, pruner="median")
        Search(settings, Timed()).run()
    return [start - previous_end for (_, previous_end), (start, _) in zip(marks, marks[1:], strict=False)]


def percent(value: float, of: float = 1.0) -> str:
    """A ratio as a percentage; "never" when the numerator never reached the target, "n/a" when the
    denominator did not."""
    if not math.isfinite(of):
        return "n/a"
    return f"{value / of:.0%}" if math.isfinite(value) else "never"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--first-seed", type=int, default=0, help="validate on other seeds, e.g. 100")
    parser.add_argument("--gpu-hours", type=float, default=400.0,
                        help="simulated GPU-hours per strategy and seed (the guide's 20 trials take about 120)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        seeds = list(pool.map(one_seed, range(args.first_seed, args.first_seed + args.seeds),
                              [args.gpu_hours] * args.seeds))
    print(f"{args.seeds} seeds from {args.first_seed}, {args.gpu_hours:.0f} GPU-hours per strategy and seed; target = "
          f"within {WITHIN:.0%} of the best reachable score (mean reference "
          f"{statistics.mean(s['reference'] for s in seeds):.4f})\n")
    print(f"{'strategy':<10} {'GPU-h to target':>16} {'(p25-p75)':>14} {'reached':>8} {'best@20':>9} {'sd':>7} "
          f"{'GPU-h/20 trials':>16} {'pruned/20':>10}")
    table = {}
    for name in STRATEGIES:
        rows = [s["strategies"][name] for s in seeds]
        hours = sorted(r["hours_to_target"] for r in rows)
        table[name] = {"median_hours": statistics.median(hours), "best": statistics.mean(r["best_after_20"] for r in rows)}
        quartiles = f"{hours[len(hours) // 4]:.0f}-{hours[(3 * len(hours)) // 4]:.0f}"
        print(f"{name:<10} {table[name]['median_hours']:>16.1f} {quartiles:>14} "
              f"{sum(r['reached'] for r in rows):>5}/{len(rows):<2} {table[name]['best']:>9.4f} "
              f"{statistics.pstdev(r['best_after_20'] for r in rows):>7.4f} "
              f"{statistics.mean(r['hours_for_20'] for r in rows):>16.1f} "
              f"{statistics.mean(r['pruned'] for r in rows):>10.1f}")
    guide = table["guide"]
    print("\nwhere the GPU-hours go before the target (mean over seeds, budget-capped when not reached):")
    print(f"{'strategy':<12}" + "".join(f"{kind:>19}" for kind in SPENDING))
    for name in ("guide", "tpe+rules", "ours"):
        spending = [s["strategies"][name]["spending"] for s in seeds]
        print(f"{name:<12}" + "".join(f"{statistics.mean(x[kind] for x in spending):>19.1f}" for kind in SPENDING))
    print()
    for name in ("median+stop", "ours", "ours+warm", "ours+hb"):
        ours = table[name]
        wins = sum(s["strategies"][name]["best_after_20"] >= s["strategies"]["guide"]["best_after_20"] for s in seeds)
        low, high = ratio_interval(seeds, name)
        print(f"{name} / guide median GPU-hours to target: {percent(ours['median_hours'], guide['median_hours'])} "
              f"(90% interval over seeds {percent(low)}-{percent(high)}; target <= 40%); best after 20 trials {ours['best']:.4f} vs {guide['best']:.4f} "
              f"({ours['best'] - guide['best']:+.4f}), >= guide on {wins}/{len(seeds)} seeds")
    gaps = wrapper_gaps()
    print(f"wrapper time between trials (SQLite + results file + trial folder): median "
          f"{statistics.median(gaps):.2f} s, max {max(gaps):.2f} s (target < 5 s)")
    print(f"bench wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
