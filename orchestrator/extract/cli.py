"""`lora-pipeline extract VIDEO... --out FRAMES`."""

from __future__ import annotations

import argparse
from pathlib import Path

from orchestrator.common.numbers import number_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    extract = subparsers.add_parser(
        "extract", help="shots and the sharpest usable frames of each shot, from video files",
        description="Finds the shot boundaries (PySceneDetect, OpenCV backend, at reduced resolution), drops "
        "black, fade, flat and frozen frames, and keeps the --per-shot sharpest frames spread across each "
        "shot. Writes FRAMES/*.png, manifest.jsonl, dropped.jsonl and summary.json. A rerun skips the "
        "videos already done.")
    extract.add_argument("videos", type=Path, nargs="+", metavar="VIDEO", help="one or more video files (read only)")
    extract.add_argument("--out", type=Path, required=True, metavar="FRAMES",
                         help="folder for the frames, manifest.jsonl and summary.json (a rerun resumes)")
    extract.add_argument("--per-shot", type=number_arg(int, low=1), default=3,
                         help="frames kept per shot (default 3)")
    extract.add_argument("--min-gap", type=number_arg(low=0), default=0.5, metavar="SECONDS",
                         help="kept frames of a shot are at least this far apart (default 0.5)")
    extract.add_argument("--shot-threshold", type=number_arg(low=0, high=255), default=27.0,
                         help="ContentDetector threshold; lower finds more cuts (default 27)")
    extract.add_argument("--analysis-width", type=number_arg(int, low=16), default=256,
                         help="width in pixels the cuts and measures are computed at (default 256)")
    extract.add_argument("--overwrite", action="store_true",
                         help="re-extract a film done here before with other settings or from a changed file, "
                              "replacing its frames (without it, that is refused)")
    extract.add_argument("--no-progress", action="store_true", help="no progress bar")
    extract.set_defaults(handler=_extract)


def _extract(args: argparse.Namespace) -> int:
    from orchestrator.common.errors import UserInputError
    from orchestrator.extract import ExtractConfig, extract_videos

    try:
        config = ExtractConfig(per_shot=args.per_shot, min_gap_seconds=args.min_gap,
                               shot_threshold=args.shot_threshold, analysis_width=args.analysis_width)
    except ValueError as error:
        raise UserInputError(str(error)) from error
    result = extract_videos(args.videos, args.out, config, progress=not args.no_progress,
                            overwrite=args.overwrite)
    for video in result.videos:
        note = " (done earlier, skipped)" if video.skipped else ""
        dropped = ", ".join(f"{reason} {count}" for reason, count in video.drop_counts.items()) or "none"
        print(f"{video.video}: {len(video.shots)} shots, {len(video.frames)} frames kept, dropped: {dropped}{note}")
    print(result.summary_line())
    print(f"manifest: {args.out / 'manifest.jsonl'}")
    for error in result.errors:
        print(f"error: {error}")
    return 1 if result.errors else 0
