"""`lora-pipeline crop FRAMES --references REFS --out CROPS`."""

from __future__ import annotations

import argparse
from pathlib import Path

from orchestrator.common.commands import device_type
from orchestrator.common.numbers import number_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    crop = subparsers.add_parser(
        "crop", help="crops of the character from film frames: detector boxes, chosen by identity; optional masks",
        description="An open-vocabulary detector (OWLv2) proposes boxes for the profile's words; the box whose "
        "CLIP similarity to the references passes the identity threshold is the character (the best one when "
        "several pass; the frame is dropped, 'character not found', when none does). Writes CROPS/*.png "
        "(RGBA with the character's mask as alpha with --masks), manifest.jsonl and summary.json. "
        "Curate CROPS next.")
    crop.add_argument("frames_dir", type=Path, metavar="FRAMES", help="folder of frames (from extract; read only)")
    crop.add_argument("--references", type=Path, required=True, metavar="REFS",
                      help="reference images of the character: identity decides which box is the character")
    crop.add_argument("--out", type=Path, required=True, metavar="CROPS", help="folder for the crops and manifest.jsonl")
    crop.add_argument("--overwrite", action="store_true",
                      help="replace the crops of other frames that CROPS already holds (without it, refused)")
    crop.add_argument("--profile", type=Path, help="character profile (YAML/TOML): its description words "
                      "become detector queries")
    crop.add_argument("--query", action="append", help="a detector query (repeatable; replaces the defaults)")
    crop.add_argument("--detector", default="random", metavar="FOLDER|random",
                      help="OWLv2 folder saved with save_pretrained (e.g. owlv2-base-patch16-ensemble), or "
                      "'random' (tiny random weights: boxes are arbitrary)")
    crop.add_argument("--box-threshold", type=number_arg(low=0, high=1), default=0.1,
                      help="detector score threshold (default 0.1)")
    crop.add_argument("--masks", action="store_true", help="add the character's mask (SAM) as the alpha channel")
    crop.add_argument("--segmenter", default="random", metavar="FOLDER|random",
                      help="SAM folder saved with save_pretrained (e.g. sam-vit-base), or 'random'")
    crop.add_argument("--threshold", type=number_arg(low=-1, high=1), default=0.75,
                      help="identity threshold (default 0.75)")
    crop.add_argument("--min-side", type=number_arg(int, low=32), default=256,
                      help="crops are at least this many pixels (default 256)")
    crop.add_argument("--margin", type=number_arg(low=0, high=10), default=0.15,
                      help="context around the box, of its size (default 0.15)")
    crop.add_argument("--clip-model", default="ViT-L-14", help="open_clip architecture (tiny-clip for tests)")
    crop.add_argument("--clip-weights", default="openai", metavar="openai|PATH|random",
                      help="weights of the CLIP model that scores identity (default: %(default)s)")
    crop.add_argument("--device", type=device_type, default="cpu", help="torch device for the models (default: %(default)s)")
    crop.add_argument("--batch-size", type=number_arg(int, low=1), default=8,
                      help="frames per detector batch (default: %(default)s)")
    crop.add_argument("--cache-dir", type=Path, help="where the offline tokenizer of the random detector is "
                      "built (default ~/.cache/lora-pipeline)")
    crop.add_argument("--no-progress", action="store_true", help="no progress bar (for logs and scripts)")
    crop.set_defaults(handler=_crop)


def _crop(args: argparse.Namespace) -> int:
    from orchestrator.common.errors import UserInputError
    from orchestrator.crop import CropConfig, crop_frames, load_detector, load_segmenter, profile_queries
    from orchestrator.vision import default_cache_dir, load_clip

    queries = tuple(args.query or ())
    if not queries and args.profile:
        from orchestrator.captions.profile import load_profile

        queries = profile_queries(load_profile(args.profile))
    try:
        config = CropConfig(identity_threshold=args.threshold, min_side=args.min_side, margin=args.margin,
                            batch_size=args.batch_size, **({"queries": queries} if queries else {}))
    except ValueError as error:
        raise UserInputError(str(error)) from error
    cache_dir = args.cache_dir or default_cache_dir()
    detector = load_detector(args.detector, cache_dir=cache_dir, device=args.device, threshold=args.box_threshold)
    segmenter = load_segmenter(args.segmenter, device=args.device) if args.masks else None
    encoder = load_clip(args.clip_model, args.clip_weights, device=args.device)
    result = crop_frames(args.frames_dir, args.references, args.out, detector=detector, embed=encoder.embed_images,
                         segmenter=segmenter, config=config, progress=not args.no_progress,
                         overwrite=args.overwrite)
    dropped = ", ".join(f"{reason} {count}" for reason, count in result.summary["dropped"].items()) or "none"
    print(f"{result.summary['summary']} (dropped: {dropped})")
    print(f"manifest: {result.out_dir / 'manifest.jsonl'}; next: lora-pipeline curate {result.out_dir} ...")
    return 0
