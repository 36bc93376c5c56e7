"""The search's chaos run at full size: 20+ seeded kill -9 events (orchestrator during ask, train, evaluate
and tell, and -- with a scheduler, the default -- while a run pauses, while runs wait paused and while one
resumes; the trainer; both; the orchestrator twice in a row on the same trial), each followed by the
documented resume (the same command again), with the invariants checked after every event and at the end
of every round (a round is one study of ``--trials`` trials; rounds reuse the study name in a fresh folder):

- exactly the requested number of counted trials; no unfinished trial left;
- no trial trained twice from the start, no epoch of a trial trained to its end twice (its logs, every
  segment's);
- no paused state lost: a paused run's saved state is the epoch it paused at; at the end every run that
  paused was resumed to its end or closed at its best, and a finished one scored each epoch once;
- never two trainers alive for the one (pretend) GPU;
- no tmux session left once a search has ended;
- ``trial_results.json`` parses and agrees with the study; every failed trial names its cause.

Real Optuna on SQLite, real tmux on a private socket, the sd-scripts test double with slow steps, the real
executor and evaluator (tiny random CLIP, CPU). The machinery lives in ``tests/search/chaos.py``.

    PYTHONPATH=. .venv/bin/python bench/search_chaos.py [--events 20] [--seed 2026] [--trials 3]
        [--scheduler first-epoch|pause|none] [--focus]
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "search"))

from chaos import SCHEDULE_PHASES, Chaos  # noqa: E402

from orchestrator.search.choices import DEFAULT_SCHEDULER, SCHEDULER_KINDS  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--scheduler", choices=SCHEDULER_KINDS, default=DEFAULT_SCHEDULER)
    parser.add_argument("--focus", action="store_true",
                        help="kill only the orchestrator, only while a run pauses, waits paused or resumes")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="search_chaos_") as root:
        report = Chaos(Path(root), seed=args.seed, trials=args.trials, scheduler=args.scheduler,
                       focus=SCHEDULE_PHASES if args.focus else ()).run(args.events, timeout=3600)
    kinds = collections.Counter(report.events)
    print(f"events injected:    {len(report.events)} in {report.rounds} rounds of {args.trials} trials "
          f"({time.monotonic() - started:.0f} s, scheduler {args.scheduler})")
    for kind, count in sorted(kinds.items()):  # "<what was killed> during <the phase it was in>"
        print(f"  {count:3d} x {kind}")
    print(f"invariants checked: {report.checks}")
    print(f"violations:         {len(report.violations)}")
    for violation in report.violations:
        print(f"  - {violation}")
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
