"""`lora-pipeline caption IMAGE_DIR --profile configs/characters/luca.yaml`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from orchestrator.captions.backends import BACKENDS, DEFAULT_MAX_NEW_TOKENS, build_messages
from orchestrator.captions.profile import CharacterProfile, load_profile
from orchestrator.captions.runner import CaptionPlan, CaptionReport, plan_captions
from orchestrator.captions.scene import build_prompt
from orchestrator.captions.tokens import MAX_TOKENS
from orchestrator.common.commands import add_output_folder, device_type
from orchestrator.common.numbers import number_arg

_LISTED = 10  # file names shown per problem; the rest are counted


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "caption",
        help="write STEM.txt captions next to the images with Qwen2-VL and a character profile",
        description="Caption every image of IMAGE_DIR: the VLM describes pose, expression, action, setting, "
        "lighting and materials; identity text comes verbatim from the character profile. Existing "
        "captions are kept unless --overwrite.",
    )
    add_caption_arguments(parser)
    parser.set_defaults(handler=run_caption)


def add_caption_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image_dir", type=Path, metavar="IMAGE_DIR", help="folder of training images")
    parser.add_argument("--profile", type=Path, required=True,
                        help="character profile YAML, e.g. configs/characters/luca.yaml")
    parser.add_argument("--model", choices=sorted(BACKENDS), default="qwen2_vl", help="VLM family")
    parser.add_argument("--weights", default=None,
                        help="hub id or local folder (default: "
                        + ", ".join(f"{name}: {hub}" for name, (_, hub) in BACKENDS.items()) + ")")
    parser.add_argument("--device", type=device_type, default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--batch-size", type=number_arg(int, low=1), default=1, help="images per generate call (default 1)")
    parser.add_argument("--max-new-tokens", type=number_arg(int, low=1), default=DEFAULT_MAX_NEW_TOKENS,
                        help=f"VLM answer length limit (default {DEFAULT_MAX_NEW_TOKENS})")
    add_output_folder(parser, dest="output_dir", old_names=("--output-dir",),
                      help="write captions here instead of next to the images")
    parser.add_argument("--family", choices=sorted(MAX_TOKENS), default="sd15",
                        help="token-length check target (default sd15: 75 tokens)")
    parser.add_argument("--overwrite", action="store_true", help="re-caption images that have a caption")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the prompt sent to the VLM for one image; load nothing, write nothing")


def run_caption(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    plan = plan_captions(args.image_dir, output_dir=args.output_dir, overwrite=args.overwrite)
    if args.dry_run:
        print_dry_run(plan, profile)
        return 0
    if not plan.jobs:
        print(f"all {len(plan.existing)} images already have captions (use --overwrite to redo them)")
        return 0

    from orchestrator.captions.backends import load_qwen_backend
    from orchestrator.captions.runner import caption_folder

    device = args.device or _default_device()
    backend = load_qwen_backend(args.model, args.weights, device=device, max_new_tokens=args.max_new_tokens)
    report = caption_folder(args.image_dir, profile, backend=backend, batch_size=args.batch_size,
                            overwrite=args.overwrite, output_dir=args.output_dir, family=args.family)
    print_report(report)
    return 1 if report.failures else 0


def print_dry_run(plan: CaptionPlan, profile: CharacterProfile) -> None:
    job = (plan.jobs or plan.existing)[0]
    prompt = build_prompt(profile)
    print(f"image:   {job.image}")
    print(f"caption: {job.caption} ({len(plan.jobs)} to write, {len(plan.existing)} already captioned)")
    print("messages sent to the VLM (qwen-vl-utils format, wrapped in the model's chat template):")
    print(json.dumps(build_messages(str(job.image), "<PROMPT>"), indent=2))
    print("PROMPT:")
    print(prompt)


def print_report(report: CaptionReport) -> None:
    print(f"captions written: {len(report.written)} in {report.seconds:.1f}s "
          f"({report.images_per_second:.2f} images/s); kept existing: {len(report.skipped_existing)}")
    if report.empty_scenes:
        print(f"{len(report.empty_scenes)} caption(s) have profile text only (the VLM answer was unusable): "
              + _names(report.empty_scenes))
    check = report.token_check
    if check is not None and check.counts:
        print(f"CLIP tokens per caption ({check.family}, limit {check.max_tokens}): "
              f"{check.shortest}-{check.longest}")
        if check.too_long:
            print(f"warning: {len(check.too_long)} caption(s) exceed {check.max_tokens} tokens and will be "
                  f"truncated by the text encoder: " + _names(check.too_long))
        if check.too_short:
            print(f"note: {len(check.too_short)} caption(s) are under the SD1.5 target of 40 tokens: "
                  + _names(check.too_short))
    for failure in report.failures:
        print(f"error: {failure.reason}", file=sys.stderr)


def _names(paths: Iterable[Path]) -> str:
    names = [Path(p).name for p in paths]
    more = f" (+{len(names) - _LISTED} more)" if len(names) > _LISTED else ""
    return ", ".join(names[:_LISTED]) + more


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
