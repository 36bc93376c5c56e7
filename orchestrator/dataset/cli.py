"""`lora-pipeline curate`, `curate apply`, `dataset prepare`, `dataset validate`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from orchestrator.common.commands import add_verbs, device_type
from orchestrator.common.numbers import number_arg

console = Console(soft_wrap=True, highlight=False)
EXIT_PROBLEMS = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    command = subparsers.add_parser(
        "curate", help="quality, near-duplicate and CLIP identity filtering of film frames, plus a review page",
        description="Without a verb, `curate FRAMES_DIR ...` is `curate run FRAMES_DIR ...` (see `curate run --help`).")
    curate_verbs = add_verbs(command, dest="curate_command", default="run")
    curate = curate_verbs.add_parser(
        "run", help="filter FRAMES_DIR into OUT_DIR with a review page (the default verb)",
        description="Writes OUT/manifest.jsonl (one line per input file), OUT/summary.json (counts per stage) "
        "and OUT/review.html. Inputs are never modified. Thresholds: configs/curation/default.toml.")
    curate.add_argument("frames_dir", type=Path, metavar="FRAMES_DIR", help="folder of candidate frames (read only)")
    curate.add_argument("--references", type=Path, required=True, metavar="REF_DIR",
                        help="folder of approved images of the character")
    curate.add_argument("--out", type=Path, required=True, metavar="OUT_DIR",
                        help="curation folder: manifest, review page, selected frames")
    curate.add_argument("--threshold", type=number_arg(low=-1, high=1),
                        help="identity threshold (default 0.75, from the config)")
    curate.add_argument("--rule", choices=["mean_top_k", "max", "mean"], help="identity aggregation rule")
    curate.add_argument("--top-k", type=number_arg(int, low=1), help="k for --rule mean_top_k (default 5)")
    curate.add_argument("--clip-model", help="open_clip architecture (default ViT-L-14; tiny-clip for tests)")
    curate.add_argument("--clip-weights", metavar="openai|PATH|random",
                        help="pretrained tag, local checkpoint file, or 'random' (default openai)")
    curate.add_argument("--device", type=device_type, default="cpu", help="cpu or cuda (default cpu)")
    curate.add_argument("--config", type=Path, help="curation TOML overriding configs/curation/default.toml")
    curate.add_argument("--cache-dir", type=Path,
                        help="embedding/analysis cache (default $LORA_PIPELINE_CACHE_DIR or ~/.cache/lora-pipeline)")
    curate.add_argument("--no-progress", action="store_true", help="no progress bars")
    curate.set_defaults(handler=_curate)

    apply = curate_verbs.add_parser(
        "apply", help="copy the reviewed frames into OUT_DIR/selected/",
        description="Final set = accepted frames not rejected on the review page + frames marked keep there.")
    apply.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="the curation folder the review page came from")
    apply.add_argument("--decisions", type=Path, metavar="FILE",
                       help="decisions.json exported by review.html (default: accepted frames as they are)")
    apply.set_defaults(handler=_apply)

    dataset = subparsers.add_parser("dataset", help="kohya dataset layout: prepare and validate")
    verbs = dataset.add_subparsers(dest="dataset_command", metavar="VERB", required=True)
    prepare = verbs.add_parser("prepare", help="copy images + .txt captions into DST/{repeat}_{name}/")
    prepare.add_argument("source", type=Path, metavar="SRC", help="folder of selected images (read only)")
    prepare.add_argument("--out", type=Path, required=True, metavar="DST",
                         help="kohya dataset parent; {repeats}_{name}/ is written inside it")
    prepare.add_argument("--repeat", type=number_arg(int, low=1), default=10, help="kohya repeats per epoch (default 10)")
    prepare.add_argument("--name", required=True, help="subset name, e.g. luca -> DST/10_luca/")
    prepare.add_argument("--validate", action="store_true", help="validate the result (non-zero exit on problems)")
    prepare.add_argument("--overwrite", action="store_true", help="replace an existing DST/{repeat}_{name}/")
    prepare.set_defaults(handler=_prepare)
    validate = verbs.add_parser("validate", help="check a kohya dataset before training")
    validate.add_argument("directory", type=Path, metavar="DIR", help="DST or DST/{repeat}_{name}")
    validate.add_argument("--json", action="store_true", help="print the report as JSON")
    validate.set_defaults(handler=_validate)


def _curate(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from orchestrator.dataset.config import load_curation_config
    from orchestrator.dataset.curate import curate

    config = load_curation_config(args.config)
    identity = replace(config.identity, **{k: v for k, v in (
        ("threshold", args.threshold), ("rule", args.rule), ("k", args.top_k)) if v is not None})
    clip = replace(config.clip, **{k: v for k, v in (
        ("model", args.clip_model), ("weights", args.clip_weights)) if v is not None})
    config = replace(config, identity=identity, clip=clip)
    console.print(f"curating {escape(str(args.frames_dir))} against {escape(str(args.references))} with "
                  f"{clip.model}/{clip.weights} on {args.device}; identity = {identity.identity_rule().describe()} "
                  f">= {identity.threshold:g}")
    result = curate(args.frames_dir, args.references, args.out, config, device=args.device,
                    cache_dir=args.cache_dir, progress=not args.no_progress)
    summary = result.summary
    console.print(f"[bold]{summary['funnel']}[/bold] ({summary['counts']['borderline']} borderline)")
    if summary["ignored"]["count"]:
        names = ", ".join(summary["ignored"]["files"][:3])
        console.print(f"ignored {summary['ignored']['count']} non-image file(s): {escape(names)}"
                      + (", ..." if summary["ignored"]["count"] > 3 else ""))
    for stage, codes in summary["rejections"].items():
        if codes:
            console.print(f"  {stage}: " + ", ".join(f"{code} {count}" for code, count in codes.items()))
    for skipped in summary["references"]["skipped"]:
        console.print(f"[yellow]reference skipped: {escape(skipped['path'])}: {escape(skipped['message'])}[/yellow]")
    console.print(f"embeddings: {summary['clip']['embedded']} computed, {summary['clip']['reused_from_cache']} "
                  "from cache")
    for name in ("manifest.jsonl", "summary.json", "review.html"):
        console.print(f"wrote {escape(str(result.out_dir / name))}")
    return 0


def _apply(args: argparse.Namespace) -> int:
    from orchestrator.dataset.apply import apply_decisions, load_decisions
    from orchestrator.dataset.records import MANIFEST_NAME, curation_id

    decisions = None
    if args.decisions:
        this_run = curation_id(args.out_dir / MANIFEST_NAME)
        decisions = load_decisions(args.decisions, curation_id=this_run)
    selection = apply_decisions(args.out_dir.resolve(), decisions)
    console.print(f"copied {len(selection.copied)} frames into {escape(str(selection.folder))} "
                  f"({selection.kept_by_reviewer} added and {selection.rejected_by_reviewer} removed by review)")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from orchestrator.dataset.layout import prepare_kohya_dataset

    prepared = prepare_kohya_dataset(args.source, args.out, repeats=args.repeat, name=args.name,
                                     overwrite=args.overwrite)
    console.print(f"prepared {escape(str(prepared.folder))}: {prepared.images} images, {prepared.captions} captions")
    if prepared.masked:
        console.print(f"{prepared.masked} of {prepared.images} images carry a mask (alpha channel): training "
                      "weighs the loss by it (masked loss)")
    if prepared.missing_captions:
        console.print(f"[yellow]{len(prepared.missing_captions)} image(s) have no caption, e.g. "
                      f"{escape(str(prepared.missing_captions[0]))} (run the caption stage first)[/yellow]")
    if prepared.skipped:
        console.print(f"{len(prepared.skipped)} other file(s) in the source were not copied")
    if args.validate:
        return _print_report(prepared.folder.parent, as_json=False)
    return 0


def _validate(args: argparse.Namespace) -> int:
    return _print_report(args.directory, as_json=args.json)


def _print_report(directory: Path, *, as_json: bool) -> int:
    from orchestrator.dataset.layout import validate_kohya_dataset

    report = validate_kohya_dataset(directory)
    if as_json:
        print(json.dumps({
            "root": str(report.root), "ok": report.ok, "images": report.images, "captions": report.captions,
            "images_x_repeats": report.images_x_repeats,
            "subsets": [{"folder": str(s.folder), "repeats": s.repeats, "name": s.name, "images": s.images,
                         "captions": s.captions, "masked": s.masked} for s in report.subsets],
            "problems": [{"path": str(p.path), "code": p.code, "message": p.message} for p in report.problems],
            "notes": report.notes}, indent=2))
        return 0 if report.ok else EXIT_PROBLEMS
    for subset in report.subsets:
        console.print(f"{escape(str(subset.folder))}: {subset.images} images x {subset.repeats} repeats")
    for note in report.notes:
        console.print(f"[dim]note: {escape(note)}[/dim]")
    for problem in report.problems:
        console.print(f"[red]{escape(str(problem))}[/red]")
    style = "green" if report.ok else "red"
    verdict = "ok" if report.ok else f"{len(report.problems)} problem(s)"
    console.print(f"[{style}]{report.counts_line()} ({report.images_x_repeats} images x repeats): {verdict}[/{style}]")
    return 0 if report.ok else EXIT_PROBLEMS
