"""The search's read-only commands: `search analyze` and `search status` (they never touch a running study)."""

from __future__ import annotations

import argparse
from pathlib import Path


def run_analyze_command(args: argparse.Namespace) -> int:
    from orchestrator.search.analyze import ANALYSIS_DIR, analyze

    output = args.output.resolve()
    if args.storage:
        _open_given_storage(args.storage, output)
    analysis = analyze(output, storage_url=args.storage)
    for note in analysis.notes:
        print(f"note: {note}")
    if analysis.best is None:
        print(f"no completed trial yet; wrote {output / ANALYSIS_DIR}")
        return 1
    best = analysis.best
    print(f"best trial {best['number']}: score {best['value']:.4f} at epoch {best['best_epoch']} "
          f"({best['checkpoint']})")
    for name, value in list(analysis.importances.items())[:5]:
        print(f"  importance {name}: {value:.3f}")
    if analysis.prior is not None:
        print(f"prior {analysis.prior['study']!r}: {analysis.prior['verdict']}; best trial proposed by "
              f"{analysis.prior['best_from']}")
        for config in analysis.prior["configs"]:
            here = "-" if config["score_here"] is None else f"{config['score_here']:.4f}"
            print(f"  prior config {config['rank_there']} (trial {config['number']} here): score there "
                  f"{config['score_there']:.4f}, here {here} ({config['outcome']})")
    print(f"wrote {output / ANALYSIS_DIR} ({len(analysis.plots)} plots), {output / 'best_parameters.json'}"
          + (f", {output / 'best_trial_config.toml'}" if (output / "best_trial_config.toml").is_file() else ""))
    return 0


def _open_given_storage(url: str, output: Path) -> None:
    """A --storage the user gave must hold this search's study; without one the analysis falls back to
    trial_results.json alone, with a note (an unreachable default storage costs only the importances)."""
    from orchestrator.search.results import load_results
    from orchestrator.search.storage import load_study

    load_study(url, load_results(output)["study_name"])


def run_status_command(args: argparse.Namespace) -> int:
    import time

    from orchestrator.search.monitor import status_lines

    while True:
        lines = status_lines(args.output.resolve())
        if args.watch:
            print("\033[2J\033[H", end="")  # clear the screen between redraws
        print("\n".join(lines), flush=True)
        if not args.watch:
            return 0
        time.sleep(args.watch)
