"""``lora-pipeline votes page RUN_OR_SEARCH`` and ``lora-pipeline votes apply VOTES``."""

from __future__ import annotations

import argparse
from pathlib import Path

from orchestrator.common.numbers import number_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    votes = subparsers.add_parser("votes", help="a person's blind comparison of the top checkpoints")
    verbs = votes.add_subparsers(dest="votes_command", metavar="VERB", required=True)
    page = verbs.add_parser("page", help="write a blind comparison page (SOURCE/verdict/compare.html)")
    page.add_argument("source", type=Path, help="a run folder (evaluation/scores.json) or a search output folder")
    page.add_argument("--top", type=number_arg(int, low=1), default=5, help="how many checkpoints by automatic score (default 5)")
    page.add_argument("--include", action="append", default=[], metavar="ID",
                      help="also compare this checkpoint: 'epoch-4', '4' or 'trial-0003/epoch-4' (repeatable)")
    page.add_argument("--out", type=Path, help="folder for the page (default SOURCE/verdict)")
    page.add_argument("--max-comparisons", type=number_arg(int, low=1), default=200, help="at most this many pairs (default 200)")
    page.set_defaults(handler=_page)
    apply = verbs.add_parser("apply", help="rank from votes.json, compare with the metrics, choose, fit weights")
    apply.add_argument("votes", type=Path, help="votes.json exported from the page")
    apply.add_argument("--manifest", type=Path, help="the page's manifest.json (default: beside VOTES)")
    apply.add_argument("--min-votes", type=number_arg(int, low=1), default=10,
                       help="refuse fewer usable votes (default 10)")
    apply.add_argument("--write-config", type=Path, metavar="TOML",
                       help="write an evaluation config with the fitted weights (evaluate --config, search --evaluation-config)")
    apply.add_argument("--resamples", type=number_arg(int, low=1), default=300,
                       help="bootstrap resamples for intervals (default 300)")
    apply.set_defaults(handler=_apply)


def _page(args: argparse.Namespace) -> int:
    from orchestrator.verdict import select_candidates, write_comparison_page

    candidates = select_candidates(args.source, top=args.top, include=tuple(args.include))
    result = write_comparison_page(candidates, args.out, max_comparisons=args.max_comparisons)
    print(f"{result.comparisons} blind comparisons of {len(candidates.candidates)} checkpoints: {result.page}")
    print(f"open {result.page.as_uri()} , vote, export votes.json into {result.page.parent}, then run:")
    print(f"  lora-pipeline votes apply {result.page.parent / 'votes.json'}")
    return 0


def _apply(args: argparse.Namespace) -> int:
    from orchestrator.verdict import apply_votes

    result = apply_votes(args.votes, manifest=args.manifest, min_votes=args.min_votes,
                         config_out=args.write_config, resamples=args.resamples)
    document = result.document
    chosen = document["chosen"]
    print(f"chosen: {chosen['candidate']} ({chosen['checkpoint']}) by the {chosen['by']}: {chosen['reason']}")
    print("ranking: " + ", ".join(
        f"{r['candidate']} {r['strength']:+.2f} [{r['interval'][0]:+.2f}, {r['interval'][1]:+.2f}]"
        for r in document["ranking"]))
    for item in document["agreement"]:
        tau = "n/a" if item["kendall_tau"] is None else f"{item['kendall_tau']:+.2f}"
        print(f"  {item['measure']:<18} same first: {'yes' if item['top1'] else 'no ':<3}  tau {tau:>5}  "
              f"{item['verdict']}")
    fitted = document["fitted_weights"]
    print("fitted weights: " + ", ".join(
        f"{m} {w:.2f} [{fitted['interval'][m][0]:.2f}, {fitted['interval'][m][1]:.2f}]"
        for m, w in fitted["weights"].items()))
    print(f"report: {result.report}\nbest: {result.best_file}")
    if result.config_file:
        print(f"evaluation config: {result.config_file} (pass it to evaluate --config or search --evaluation-config)")
    return 0
