"""``crop``'s detector + identity against the raw forward passes of the same models on the same batch.

Measured side by side in one run, on frames extracted from the toy film (``generate_toy_film`` then
``extract_videos``), decoded once into memory, with the tiny random-weight OWLv2 (``build_random_owlv2``)
and the tiny random CLIP (``tiny-clip``):

1. raw forward: the detector's ``model(**inputs)`` on inputs the processor made beforehand, plus CLIP's
   ``encode_image`` on the already preprocessed box pieces that identity scores (the same pieces);
2. detector + identity: :func:`orchestrator.crop.score_candidates` on the same images: preprocessing,
   the detector, box decoding and NMS, cutting each box out with its margin, embedding every box,
   identity scores against the references.
Rounds alternate (raw, pipeline, raw, ...); the ratio is taken on each side's fastest round (the one
least disturbed by other processes) and on the medians too. Target: (1)/(2) >= 0.85.

Usage::

    .venv/bin/python bench/crop_speed.py [--frames 32] [--batch-size 8] [--rounds 5] [--detector tiny|base]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # a shared CPU: no spinning between operators

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._rounds import print_rounds, print_speed_ratio  # noqa: E402


def film_frames(folder: Path, count: int, size: tuple[int, int]) -> list:
    from orchestrator.extract import ExtractConfig, extract_videos
    from orchestrator.toy import ToyFilmSpec, generate_toy_film
    from orchestrator.vision import open_image_rgb

    shots = max(6, -(-count // 3))
    film = generate_toy_film(folder / "film", ToyFilmSpec(shots=shots, width=size[0], height=size[1]))
    result = extract_videos([film.video], folder / "frames", ExtractConfig(per_shot=3), progress=False)
    images = [open_image_rgb(folder / "frames" / line["file"]) for video in result.videos for line in video.frames]
    return images[:count]


def main() -> None:
    import torch

    from orchestrator.crop import CropConfig, build_random_owlv2, score_candidates
    from orchestrator.toy import generate_toy_references
    from orchestrator.vision import identity_scores, load_clip, open_image_rgb

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=32, help="frames in the batch set (default 32)")
    parser.add_argument("--batch-size", type=int, default=8, help="frames per detector batch (default 8)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per side (default 5)")
    parser.add_argument("--detector", choices=["tiny", "base"], default="tiny",
                        help="tiny random OWLv2 (128 px) or the real base architecture (960 px), random weights")
    parser.add_argument("--clip-model", default="tiny-clip",
                        help="open_clip architecture, random weights (default tiny-clip; ViT-B-32 is the quickstart's)")
    parser.add_argument("--size", default="640x480", help="toy film size WxH (default 640x480)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)

    with tempfile.TemporaryDirectory(prefix="bench_crop_") as tmp:
        root = Path(tmp)
        size = tuple(int(v) for v in args.size.split("x"))
        images = film_frames(root, args.frames, size)
        detector = build_random_owlv2(root / "tokenizer", base=args.detector == "base")
        encoder = load_clip(args.clip_model, "random")
        references_dir = generate_toy_references(root / "references", count=3)
        references = encoder.embed_images([open_image_rgb(p) for p in sorted(references_dir.iterdir())])
        config = CropConfig(identity_threshold=-1.0, batch_size=args.batch_size)
        batches = [images[i:i + args.batch_size] for i in range(0, len(images), args.batch_size)]

        def pipeline() -> list:
            return [score_candidates(batch, references, detector=detector, embed=encoder.embed_images,
                                     config=config) for batch in batches]

        # The raw side's inputs, made once: the processor's tensors and the very pieces identity embeds.
        scored = pipeline()  # also the warm-up
        detector_inputs = [detector.inputs(batch, list(config.queries)) for batch in batches]
        piece_tensors = []
        for batch, batch_scores in zip(batches, scored, strict=True):
            pieces = [image.crop(d.box.grown(config.identity_margin).clipped(*image.size).as_ints())
                      for image, (candidates, _) in zip(batch, batch_scores, strict=True) for d in candidates]
            piece_tensors.append(torch.stack([encoder.preprocess(p) for p in pieces]) if pieces else None)
        boxes = sum(len(c) for batch_scores in scored for c, _ in batch_scores)

        def raw() -> None:
            with torch.inference_mode():
                for inputs, tensors in zip(detector_inputs, piece_tensors, strict=True):
                    detector.model(**inputs)
                    if tensors is not None:
                        identity_scores(encoder.embed_tensors(tensors), references, config.identity_rule)

        raw()
        raw_times, pipeline_times = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            raw()
            raw_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            pipeline()
            pipeline_times.append(time.perf_counter() - start)
        print(f"{len(images)} frames ({size[0]}x{size[1]}) in batches of {args.batch_size}, {boxes} candidate boxes; "
              f"detector {detector.identity}, CLIP {encoder.identity}, torch threads {torch.get_num_threads()}")
        print_rounds("raw forward passes ", raw_times, len(images))
        print_rounds("detector + identity", pipeline_times, len(images))
        print_speed_ratio("detector + identity speed / raw forward speed", raw_times, pipeline_times, target=0.85)

if __name__ == "__main__":
    main()
