"""`lora-pipeline quickstart`: every stage, for real, on a generated toy character."""

from __future__ import annotations

import argparse
from pathlib import Path

from orchestrator.common.numbers import number_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "quickstart", help="run every stage on a generated toy character (proves the chain; minutes)",
        description="Draws a short toy film (shot cuts, the hero beside a second character, a fade to black, a "
        "frozen stretch), then extracts the sharpest frames per shot, crops the hero (detector boxes chosen by "
        "identity, with its mask), curates, prepares, captions, trains with sd-scripts in tmux (2 short epochs, "
        "masked loss), evaluates, runs a 3-trial search with pruning on SQLite and writes the report. Models "
        "not given are built locally with random weights: the chain is real, the images are noise.")
    parser.add_argument("--out", type=Path, default=Path("quickstart_out"), help="output folder (default: %(default)s)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cpu: 64 px, 2 epochs (~3 min on 2 quiet cores); cuda: 512 px, fp16, 4 epochs (default: %(default)s)")
    parser.add_argument("--base-model", metavar="PATH|HUB_ID",
                        help="SD1.5 base model (default: a random-weight SD1.5 built locally)")
    parser.add_argument("--clip-weights", metavar="TAG|PATH",
                        help="open_clip weights for curation and scoring, e.g. openai or a checkpoint file "
                             "(default: random)")
    parser.add_argument("--clip-model", help="open_clip architecture (default: ViT-L-14 with weights, ViT-B-32 random)")
    parser.add_argument("--vlm-weights", metavar="PATH|HUB_ID",
                        help="Qwen2-VL caption model (default: a tiny random Qwen2-VL built locally)")
    parser.add_argument("--detector", metavar="FOLDER",
                        help="OWLv2 folder saved with save_pretrained for the crop stage (default: a tiny random "
                             "OWLv2 built locally)")
    parser.add_argument("--segmenter", metavar="FOLDER",
                        help="SAM folder saved with save_pretrained for the crops' masks (default: a tiny random SAM)")
    parser.add_argument("--no-masks", action="store_true",
                        help="crops without masks, and training without masked loss")
    parser.add_argument("--sd-scripts", type=Path, help="sd-scripts checkout (default: configs/paths.toml)")
    parser.add_argument("--trainer-python", help="Python with sd-scripts' requirements (default: configs/paths.toml)")
    parser.add_argument("--trials", type=number_arg(int, low=1, high=100_000), default=3, help="search trials (default: %(default)s)")
    parser.add_argument("--model-cache", type=Path,
                        help="where built models are kept for the next run (default: ~/.cache/lora-pipeline/"
                             "quickstart-models)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(handler=_quickstart)


def _quickstart(args: argparse.Namespace) -> int:
    import logging

    from orchestrator.common.errors import UserInputError
    from orchestrator.quickstart.chain import print_timings, print_where, run_quickstart
    from orchestrator.quickstart.steps import QuickstartOptions

    # Each tmux session start logs an INFO line; the quickstart prints its own account of them.
    logging.getLogger("libtmux").setLevel(logging.WARNING)
    if args.trials < 1:
        raise UserInputError("must be at least 1", key="trials")
    options = QuickstartOptions(
        out=args.out.resolve(), device=args.device, base_model=args.base_model, clip_weights=args.clip_weights,
        clip_model=args.clip_model, vlm_weights=args.vlm_weights, detector=args.detector,
        segmenter=args.segmenter, masks=not args.no_masks, sd_scripts=args.sd_scripts,
        trainer_python=args.trainer_python, trials=args.trials, model_cache=args.model_cache,
        progress=not args.no_progress)
    result = run_quickstart(options)
    print_timings(result)
    print_where(result)
    return 0
