"""Does a finished study make the next character's search cheaper? Searches with and without ``--prior``.

Everything goes through the response-surface protocol (``orchestrator/search/surface.py``, documented in
``bench/search_efficiency.py``), so any family of ours (``--families``) or any surface of yours
(``--surface MODULE:CLASS --surface-path DIR``) is measured the same way. For each seed:

1. the first character's search runs on ``CLASS(seed)`` with our defaults and the guide's budget (the
   GPU-hours the guide's TPE spends on its 20 trials there); its study is the prior;
2. the second character's surface is either **related** (the same surface seen through
   :class:`MovedSurface`: learning rates and alpha/dim moved a little, as between two characters of one
   film) or **unrelated** (``CLASS(seed + 1000)`` moved far and with its categorical choices rotated: the
   prior points the wrong way everywhere). :class:`MovedSurface` evaluates the base surface at slightly
   transformed flat parameters, so it works for any protocol surface;
3. the second search runs three times within the same GPU-hour budget: the guide (TPE from nothing, no
   rules, no pruning), ours from nothing, and ours with the prior (``orchestrator/search/prior.py``).

Both datasets are given the same size, so the prior's epochs carry over unscaled (the surfaces do not
model dataset size). Printed per family and pair kind: median GPU-hours until a completed trial is within
2% of the second surface's best reachable score (``search_efficiency.best_reachable``; a seed that never
got there within the budget counts as infinite), the prior's ratio to the guide's (target for related
pairs <= 25%; "<x%" when the guide's median lies beyond the budget, x = the prior's share of the budget)
and to ours without it (target for unrelated pairs <= 110%: a misleading prior is outgrown), seeds that
reached it (with prior / ours / guide), and the mean regret (best reachable minus the noise-free score of
the config handed over) after the GPU-hours the guide spends on its 20 trials.

Run: PYTHONPATH=. .venv/bin/python bench/search_prior.py [--families quadratic,late] [--seeds 8]
     [--gpu-hours 400] [--workers 2] [--surface MODULE:CLASS --surface-path DIR]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.search_efficiency import (  # noqa: E402
    BASE,
    BEST_AFTER,
    SPACE,
    STRATEGIES,
    WITHIN,
    BudgetedExecutor,
    TrialPoint,
    add_surface_arguments,
    best_reachable,
    chosen_families,
    flat_config,
    handed_over,
    percent,
    resolve_surface,
    run_seeds,
    where_hours_go,
)
from orchestrator.search.executor import SearchAborted  # noqa: E402
from orchestrator.search.prior import plan_prior, prior_from_study  # noqa: E402
from orchestrator.search.space import SearchSpace, load_search_space  # noqa: E402
from orchestrator.search.surface import ResponseSurface, make_surface  # noqa: E402
from orchestrator.search.vocabulary import GPU_SECONDS_ATTR, OUTCOME_ATTR

DATASET = {"images": 400, "images_per_epoch": 4000}  # both characters: the prior's epochs carry unscaled
FIRST_TRIALS = 20  # the guide's budget for the first character
KINDS = ("related", "unrelated")


class MovedSurface:
    """``base`` seen through moved parameters: its optimum in learning rate, text-encoder learning rate and
    alpha/dim moves by the given factors and shift, and each categorical parameter in ``rotate`` takes the
    score of the next choice of its list. Costs are the base's for the config really trained."""

    def __init__(self, base: ResponseSurface, *, lr_factor: float = 1.0, te_factor: float = 1.0,
                 ratio_shift: float = 0.0, rotate: Mapping[str, list[Any]] | None = None) -> None:
        self.base = base
        self.lr_factor, self.te_factor, self.ratio_shift = lr_factor, te_factor, ratio_shift
        self.rotate = dict(rotate or {})
        self.seconds_per_evaluation = base.seconds_per_evaluation

    def moved(self, flat: Mapping[str, Any]) -> dict[str, Any]:
        """The flat config whose base score this surface gives ``flat`` (optimum at lr x lr_factor, ...)."""
        moved = dict(flat)
        for name in ("learning_rate", "unet_lr"):
            if name in moved:
                moved[name] = float(moved[name]) / self.lr_factor
        if "text_encoder_lr" in moved:
            moved["text_encoder_lr"] = float(moved["text_encoder_lr"]) / self.te_factor
        if self.ratio_shift and "network_alpha_ratio" in moved:
            ratio = float(moved["network_alpha_ratio"]) - self.ratio_shift
            moved["network_alpha_ratio"] = ratio
            moved["network_alpha"] = int(round(float(moved.get("network_dim", 128)) * ratio))
        for name, choices in self.rotate.items():
            if moved.get(name) in choices:
                moved[name] = choices[(choices.index(moved[name]) + 1) % len(choices)]
        return moved

    def observe(self, flat: Mapping[str, Any], epoch: int) -> float:
        return self.base.observe(self.moved(flat), epoch)

    def validation_loss(self, flat: Mapping[str, Any], epoch: int) -> float:
        return self.base.validation_loss(self.moved(flat), epoch)

    def best_sampled_score(self, flat: Mapping[str, Any]) -> float:
        return self.base.best_sampled_score(self.moved(flat))

    def epoch_cost(self, flat: Mapping[str, Any]) -> float:
        return self.base.epoch_cost(flat)


def second_surface(kind: str, surface_class: type, seed: int, space: SearchSpace) -> ResponseSurface:
    rng = random.Random(f"{kind}:{seed}")
    if kind == "related":  # one film: the optimum moves by about 8% in the learning rates, 0.03 in alpha/dim
        return MovedSurface(make_surface(surface_class, seed), lr_factor=math.exp(rng.choice((-1, 1)) * 0.08),
                            te_factor=math.exp(rng.uniform(-0.08, 0.08)), ratio_shift=rng.choice((-1, 1)) * 0.03)
    rotate = {spec.name: list(spec.choices) for spec in space.parameters
              if spec.kind == "categorical" and spec.name != "max_train_epochs"}  # epochs set the schedule
    return MovedSurface(make_surface(surface_class, seed + 1000), lr_factor=rng.choice((0.75, 1.3)),
                        te_factor=rng.choice((0.7, 1.4)), ratio_shift=rng.choice((-1, 1)) * 0.15, rotate=rotate)


def run_search(name: str, seed: int, surface: ResponseSurface, *, trials: int, gpu_hours: float,
               prior: Any = None) -> tuple[Any, list[TrialPoint]]:
    """One search of strategy ``name`` (search_efficiency's) on ``surface``; its study and trained trials."""
    from orchestrator.search.study import Search, SearchSettings

    space = load_search_space(SPACE)
    output = Path(tempfile.gettempdir()) / f"bench_search_{os.getpid()}"  # no files; the resume claim's lock
    settings = SearchSettings(space=space, base_config=BASE, output=output,
                              trials=trials, storage_url="memory", seed=seed, write_files=False,
                              study_name=f"{name}_{seed}", prior=prior, dataset=DATASET, **STRATEGIES[name])
    search = Search(settings, BudgetedExecutor(gpu_hours * 3600, surface=surface, record_progress=False))
    try:
        search.run()
    except SearchAborted:
        pass  # the budget is spent
    points = []
    for trial in sorted(search.study.get_trials(deepcopy=False), key=lambda t: t.number):
        if GPU_SECONDS_ATTR not in trial.user_attrs:
            continue  # rejected by a rule, or refused once the budget was spent
        complete = trial.user_attrs.get(OUTCOME_ATTR) == "complete"
        flat = flat_config(space, trial.params)
        trained = {**flat, "max_train_epochs": trial.last_step} if trial.last_step else flat
        points.append(TrialPoint(trial.user_attrs[OUTCOME_ATTR], trial.value if complete else None,
                                 surface.best_sampled_score(trained) if complete else None,
                                 float(trial.user_attrs.get(GPU_SECONDS_ATTR) or 0.0), trial.last_step))
    return search.study, points


def one_seed(seed: int, gpu_hours: float, surface_name: str, surface_path: str | None) -> dict:
    surface_class = resolve_surface(surface_name, surface_path)
    space = load_search_space(SPACE)
    first_surface = make_surface(surface_class, seed)
    # The guide's budget: the GPU-hours the guide spends on its 20 trials, spent by our defaults.
    guide_first = run_search("guide", seed, first_surface, trials=FIRST_TRIALS, gpu_hours=math.inf)[1]
    first, _ = run_search("ours", seed, first_surface, trials=400,
                          gpu_hours=sum(p.gpu_seconds for p in guide_first) / 3600)
    plan = plan_prior(prior_from_study(first, "bench"), space, BASE, dataset=DATASET)
    result: dict[str, dict] = {}
    for kind in KINDS:
        surface = second_surface(kind, surface_class, seed, space)
        target = (1 - WITHIN) * best_reachable(space, surface, seed)
        runs = {"guide": run_search("guide", seed, surface, trials=400, gpu_hours=gpu_hours)[1],
                "ours": run_search("ours", seed, surface, trials=400, gpu_hours=gpu_hours)[1],
                "prior": run_search("ours", seed, surface, trials=400, gpu_hours=gpu_hours, prior=plan)[1]}
        guide_budget = sum(p.gpu_seconds for p in runs["guide"][:BEST_AFTER])
        result[kind] = {}
        for name, points in runs.items():
            reached = any(p.noise_free is not None and p.noise_free >= target for p in points)
            handed = handed_over(points, guide_budget)
            result[kind][name] = {
                "hours": sum(where_hours_go(points, target).values()) if reached else math.inf,
                "reached": reached, "regret": target / (1 - WITHIN) - (handed if handed is not None else 0.0)}
    return result


def ratio(value: float, of: float, budget: float) -> str:
    """``percent(value, of)``; when only ``of`` never got there (its median is past the budget), an upper
    bound: the share of the budget ``value`` took."""
    if math.isfinite(value) and not math.isfinite(of):
        return f"<{value / budget:.0%}"
    return percent(value, of)


def rows(family: str, seeds: list[dict], budget: float) -> list[str]:
    lines = []
    for kind in KINDS:
        median = {name: statistics.median(s[kind][name]["hours"] for s in seeds) for name in ("guide", "ours", "prior")}
        reached = {name: sum(s[kind][name]["reached"] for s in seeds) for name in median}
        regret = {name: statistics.mean(s[kind][name]["regret"] for s in seeds) for name in median}
        lines.append(f"{family:<10} {kind:<10} {median['guide']:>7.1f} {median['ours']:>7.1f} {median['prior']:>7.1f} "
                     f"{ratio(median['prior'], median['guide'], budget):>8} {ratio(median['prior'], median['ours'], budget):>8} "
                     f"{reached['prior']:>3}/{reached['ours']}/{reached['guide']}/{len(seeds):<3} "
                     f"{regret['ours']:>8.4f} {regret['prior']:>8.4f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_surface_arguments(parser, seeds=8, gpu_hours_help="simulated GPU-hours per second search")
    args = parser.parse_args()
    families = chosen_families(parser, args)
    started = time.perf_counter()
    print(f"{args.seeds} seeds from {args.first_seed}; first search: ours, the guide's {FIRST_TRIALS}-trial GPU-h, second searches "
          f"{args.gpu_hours:.0f} GPU-h each; GPU-h to within {WITHIN:.0%} of the second surface's best reachable\n")
    print(f"{'family':<10} {'pair':<10} {'guide':>7} {'ours':>7} {'prior':>7} {'p/guide':>8} {'p/ours':>8} "
          f"{'reached p/o/g':>13} {'regret o':>8} {'regret p':>8}")
    for family in families:
        seeds = run_seeds(one_seed, args, family)
        for line in rows(family, seeds, args.gpu_hours):
            print(line, flush=True)
    print(f"\nbench wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
