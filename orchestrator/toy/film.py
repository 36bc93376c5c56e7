"""A short toy "film": shots with hard cuts, the hero alone and beside a second character, a fade to
black and a frozen stretch, written with OpenCV's ``VideoWriter`` (MJPG in ``.avi``: no system ffmpeg).

``film.json`` beside the video records the truth: each shot's frames and kind, and per frame the box of
every character drawn (tests and benches read it; the pipeline never does). Same spec, same bytes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from orchestrator.common.atomic import atomic_write_json
from orchestrator.toy.character_drawing import (
    _SUPERSAMPLE,
    HERO,
    STRANGER,
    Pose,
    draw_background,
    draw_figure,
    figure_box,
    random_pose,
)

FILM_TRUTH_NAME = "film.json"
#: One shot per entry, in order: who is on screen, and what the shot's end does.
SHOT_PLAN = ("hero", "hero+stranger", "hero+fade", "stranger", "hero+frozen", "hero+stranger")


@dataclass(frozen=True)
class ToyFilmSpec:
    shots: int = 6
    shot_seconds: float = 1.5
    fps: float = 12.0
    width: int = 320
    height: int = 240
    repeat: int = 1  # the shot plan this many times over (longer films for the memory bench)
    seed: int = 0

    @property
    def frames_per_shot(self) -> int:
        return max(4, round(self.shot_seconds * self.fps))


@dataclass(frozen=True)
class ToyFilm:
    video: Path
    truth: Path
    spec: ToyFilmSpec


def _moving(pose: Pose, t: float, drift: float) -> Pose:
    """The pose ``t`` (0..1) of the way through its shot: walking sideways and swinging its arms."""
    return replace(pose, center_x=float(np.clip(pose.center_x + drift * t, 0.12, 0.88)),
                   arm_left=pose.arm_left + 60 * t, arm_right=pose.arm_right - 60 * t)


def _shot_poses(rng: np.random.Generator, kind: str) -> dict[str, tuple[Pose, float]]:
    pose = random_pose(rng)
    if "stranger" in kind and "hero" in kind:
        left, right = replace(pose, center_x=0.28, scale=0.6), replace(random_pose(rng), center_x=0.72, scale=0.6)
        if rng.random() < 0.5:
            left, right = right, left
        return {"hero": (left, 0.06), "stranger": (right, -0.06)}
    who = "stranger" if kind == "stranger" else "hero"
    return {who: (pose, float(rng.choice([-1, 1]) * rng.uniform(0.12, 0.25)))}


def generate_toy_film(out_dir: str | Path, spec: ToyFilmSpec | None = None) -> ToyFilm:
    """Write ``out_dir/toy_film.avi`` and ``out_dir/film.json``."""
    import cv2

    spec = spec or ToyFilmSpec()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / "toy_film.avi"
    partial = out_dir / ".toy_film.partial.avi"
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*"MJPG"), spec.fps, (spec.width, spec.height))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write MJPG .avi here")
    rng = np.random.default_rng(spec.seed)
    big_w, big_h = spec.width * _SUPERSAMPLE, spec.height * _SUPERSAMPLE
    shots, boxes = [], {}
    number = 0
    plan = [SHOT_PLAN[i % len(SHOT_PLAN)] for i in range(spec.shots)] * spec.repeat
    count = spec.frames_per_shot
    for shot_index, kind in enumerate(plan, start=1):
        side = max(big_w, big_h)
        background = draw_background(rng, side, kind=shot_index)  # neighbours differ: clear cuts.crop((0, side - big_h, big_w, side))
        figures = _shot_poses(rng, kind)
        first = number
        frozen_from = count * 2 // 3 if kind.endswith("frozen") else count
        fade_from = count * 2 // 3 if kind.endswith("fade") else count
        last_image: np.ndarray | None = None
        for index in range(count):
            if index >= frozen_from and last_image is not None:
                frame = last_image
            else:
                t = index / (count - 1)
                canvas = background.copy()
                draw = ImageDraw.Draw(canvas)
                frame_boxes = {}
                for who, (pose, drift) in figures.items():
                    look = HERO if who == "hero" else STRANGER
                    moved = _moving(pose, t, drift)
                    draw_figure(draw, look, moved, big_w, big_h)
                    frame_boxes[who] = list(figure_box(look, moved, spec.width, spec.height))
                image = np.asarray(canvas.resize((spec.width, spec.height), Image.Resampling.LANCZOS))
                if index >= fade_from:  # the last third fades to black, ending on black frames
                    level = max(0.0, 1.0 - (index - fade_from + 1) / max(1, count - fade_from - 2))
                    image = (image.astype(np.float32) * level).astype(np.uint8)
                frame = np.ascontiguousarray(image[:, :, ::-1])  # RGB -> BGR for OpenCV
                last_image = frame
            boxes[number] = frame_boxes
            writer.write(frame)
            number += 1
        shots.append({"shot": shot_index, "kind": kind, "first": first, "last": number - 1,
                      "frozen_from": first + frozen_from if frozen_from < count else None,
                      "fade_from": first + fade_from if fade_from < count else None})
    writer.release()
    partial.replace(video)
    truth = atomic_write_json(out_dir / FILM_TRUTH_NAME, {
        "spec": asdict(spec), "video": video.name, "frames": number, "shots": shots,
        "boxes": {str(k): v for k, v in boxes.items()}})
    return ToyFilm(video=video, truth=truth, spec=spec)
