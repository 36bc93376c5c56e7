"""Drawing a toy cartoon character and the scenes around it (pure: numpy Generator in, PIL image out).

The "hero" always has the same features (round tan face, brown curly hair, big eyes, a blue-and-white
striped shirt, green shorts) so that an identity model has something consistent to find; pose, scale,
position, facing and background vary from frame to frame. The "stranger" is a different character
(square pale face, blond spiky hair, red shirt) for the curation stage to reject.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

Color = tuple[int, int, int]
_SUPERSAMPLE = 2  # drawn at twice the size, then downsampled, for smooth edges


@dataclass(frozen=True)
class CharacterLook:
    name: str
    skin: Color
    hair: Color
    shirt: Color
    stripe: Color | None
    shorts: Color
    eyes: Color
    square_head: bool
    spiky_hair: bool


HERO = CharacterLook("hero", skin=(224, 172, 128), hair=(92, 58, 32), shirt=(52, 98, 200),
                     stripe=(240, 240, 240), shorts=(60, 140, 70), eyes=(40, 90, 60),
                     square_head=False, spiky_hair=False)
STRANGER = CharacterLook("stranger", skin=(250, 214, 200), hair=(240, 210, 90), shirt=(200, 40, 40),
                         stripe=None, shorts=(70, 70, 80), eyes=(60, 60, 200),
                         square_head=True, spiky_hair=True)


@dataclass(frozen=True)
class Pose:
    center_x: float  # 0..1 of the frame width
    center_y: float  # 0..1 of the frame height (the body's middle)
    scale: float  # body height as a fraction of the frame height
    facing: float  # -1 (left) .. 1 (right): shifts eyes and hair
    arm_left: float  # angles in degrees from hanging straight down
    arm_right: float
    leg_left: float
    leg_right: float


def random_pose(rng: np.random.Generator) -> Pose:
    return Pose(
        center_x=float(rng.uniform(0.3, 0.7)), center_y=float(rng.uniform(0.5, 0.62)),
        scale=float(rng.uniform(0.55, 0.8)), facing=float(rng.uniform(-1, 1)),
        arm_left=float(rng.uniform(-20, 150)), arm_right=float(rng.uniform(-20, 150)),
        leg_left=float(rng.uniform(-5, 35)), leg_right=float(rng.uniform(-5, 35)),
    )


FRONT_POSE = Pose(center_x=0.5, center_y=0.56, scale=0.78, facing=0.0, arm_left=15, arm_right=15,
                  leg_left=8, leg_right=8)


def _jitter(rng: np.random.Generator, color: Color, amount: int) -> Color:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in color)  # type: ignore[return-value]


def draw_background(rng: np.random.Generator, size: int, kind: int | None = None) -> Image.Image:
    """One of a few seaside-town scenes (sky and sea, beach, street wall, plain studio: ``kind`` 0-3, random
    when None) with random details."""
    kind = int(rng.integers(0, 4)) if kind is None else kind % 4
    y = np.linspace(0.0, 1.0, size)[:, None, None]
    top = np.array(_jitter(rng, [(120, 180, 240), (250, 200, 150), (200, 170, 140), (90, 90, 110)][kind], 25))
    bottom = np.array(_jitter(rng, [(30, 90, 160), (230, 210, 160), (150, 120, 100), (50, 50, 60)][kind], 25))
    gradient = (top * (1 - y) + bottom * y) * np.ones((1, size, 1))
    image = Image.fromarray(gradient.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    horizon = int(size * rng.uniform(0.55, 0.75))
    if kind == 0:  # sea below the horizon, a sun
        draw.rectangle([0, horizon, size, size], fill=_jitter(rng, (20, 80, 150), 20))
        r = int(size * rng.uniform(0.05, 0.09))
        sx, sy = int(rng.uniform(0.1, 0.9) * size), int(rng.uniform(0.08, 0.3) * size)
        draw.ellipse([sx - r, sy - r, sx + r, sy + r], fill=(255, 236, 150))
    elif kind == 1:  # sand and a few shells
        draw.rectangle([0, horizon, size, size], fill=_jitter(rng, (225, 200, 150), 15))
        for _ in range(int(rng.integers(3, 8))):
            x, yy = int(rng.uniform(0, size)), int(rng.uniform(horizon, size))
            draw.ellipse([x, yy, x + size // 40 + 2, yy + size // 50 + 2], fill=_jitter(rng, (250, 240, 230), 10))
    elif kind == 2:  # a street of colored walls with windows
        x = 0
        while x < size:
            width = int(size * rng.uniform(0.2, 0.4))
            draw.rectangle([x, int(size * 0.15), x + width, horizon], fill=_jitter(rng, (220, 150, 90), 50))
            draw.rectangle([x + width // 4, int(size * 0.3), x + width // 2, int(size * 0.45)], fill=(60, 60, 80))
            x += width
        draw.rectangle([0, horizon, size, size], fill=_jitter(rng, (150, 140, 130), 15))
    return image


def _limb(draw: ImageDraw.ImageDraw, start: tuple[float, float], length: float, angle_deg: float,
          side: int, width: int, color: Color) -> None:
    angle = math.radians(angle_deg) * side
    end = (start[0] + math.sin(angle) * length, start[1] + math.cos(angle) * length)
    draw.line([start, end], fill=color, width=width)
    r = width * 0.6
    draw.ellipse([end[0] - r, end[1] - r, end[0] + r, end[1] + r], fill=color)


def figure_box(look: CharacterLook, pose: Pose, width: int, frame_height: int) -> tuple[int, int, int, int]:
    """The pixel box (x0, y0, x1, y1) that holds the whole figure drawn by :func:`draw_figure`."""
    height = pose.scale * frame_height
    cx, cy = pose.center_x * width, pose.center_y * frame_height
    head_top = cy - height * 0.28 - height * 0.17 * (1.45 if look.spiky_hair else 1.3)
    reach = height * 0.13 * 0.9 + height * 0.27 + height * 0.06
    box = (cx - reach, head_top, cx + reach, cy + height * 0.12 + height * 0.33)
    return (max(0, int(box[0])), max(0, int(box[1])), min(width, int(box[2]) + 1), min(frame_height, int(box[3]) + 1))


def draw_figure(draw: ImageDraw.ImageDraw, look: CharacterLook, pose: Pose, width: int,
                frame_height: int | None = None) -> None:
    """Draw ``look`` in ``pose`` on a ``width`` x ``frame_height`` canvas (square when no height is given)."""
    frame_height = frame_height or width
    height = pose.scale * frame_height
    cx, cy = pose.center_x * width, pose.center_y * frame_height
    head_r = height * 0.17
    head_cy = cy - height * 0.28
    torso_top, torso_bottom = head_cy + head_r * 0.9, cy + height * 0.12
    torso_half = height * 0.13
    limb_width = max(2, int(height * 0.06))
    # legs, then torso (with stripes), then arms, so the arms are in front
    hip_y = torso_bottom - limb_width
    for side, angle in ((-1, pose.leg_left), (1, pose.leg_right)):
        _limb(draw, (cx + side * torso_half * 0.5, hip_y), height * 0.3, angle, side, limb_width + 2, look.skin)
    draw.rectangle([cx - torso_half, torso_bottom - height * 0.08, cx + torso_half, torso_bottom + height * 0.05],
                   fill=look.shorts)
    draw.rounded_rectangle([cx - torso_half, torso_top, cx + torso_half, torso_bottom], radius=int(torso_half * 0.4),
                           fill=look.shirt)
    if look.stripe is not None:
        stripe_h = (torso_bottom - torso_top) / 7
        for index in range(1, 7, 2):
            top = torso_top + index * stripe_h
            draw.rectangle([cx - torso_half, top, cx + torso_half, top + stripe_h * 0.6], fill=look.stripe)
    for side, angle in ((-1, pose.arm_left), (1, pose.arm_right)):
        _limb(draw, (cx + side * torso_half * 0.9, torso_top + limb_width), height * 0.27, angle, side,
              limb_width, look.skin)
    # head, hair, eyes
    head_box = [cx - head_r, head_cy - head_r, cx + head_r, head_cy + head_r]
    if look.square_head:
        draw.rounded_rectangle(head_box, radius=int(head_r * 0.25), fill=look.skin)
    else:
        draw.ellipse(head_box, fill=look.skin)
    hair_shift = pose.facing * head_r * 0.15
    if look.spiky_hair:
        for index in range(6):
            x0 = cx - head_r + index * head_r / 3 + hair_shift
            draw.polygon([(x0, head_cy - head_r * 0.6), (x0 + head_r / 6, head_cy - head_r * 1.45),
                          (x0 + head_r / 3, head_cy - head_r * 0.6)], fill=look.hair)
    else:  # curls: a ring of overlapping circles over the top of the head
        curl = head_r * 0.38
        for index in range(9):
            angle = math.pi * (1.05 + index * 0.9 / 8)
            x = cx + hair_shift + math.cos(angle) * head_r * 0.95
            y = head_cy + math.sin(angle) * head_r * 0.85
            draw.ellipse([x - curl, y - curl, x + curl, y + curl], fill=look.hair)
    eye_dx, eye_r = head_r * 0.38, head_r * 0.2
    look_shift = pose.facing * head_r * 0.18
    for side in (-1, 1):
        ex, ey = cx + side * eye_dx + look_shift, head_cy + head_r * 0.05
        draw.ellipse([ex - eye_r, ey - eye_r, ex + eye_r, ey + eye_r], fill=(250, 250, 250))
        pr = eye_r * 0.55
        px = ex + pose.facing * eye_r * 0.3
        draw.ellipse([px - pr, ey - pr, px + pr, ey + pr], fill=look.eyes)
    mouth_y = head_cy + head_r * 0.5
    draw.arc([cx - head_r * 0.3 + look_shift, mouth_y - head_r * 0.15, cx + head_r * 0.3 + look_shift,
              mouth_y + head_r * 0.15], start=10, end=170, fill=(120, 50, 40), width=max(1, int(head_r * 0.08)))


def draw_frame(rng: np.random.Generator, size: int, look: CharacterLook, pose: Pose | None = None,
               *, plain_background: Color | None = None) -> Image.Image:
    """A square RGB frame of ``look`` in ``pose`` (random if None) over a random (or plain) background."""
    pose = pose or random_pose(rng)
    big = size * _SUPERSAMPLE
    if plain_background is None:
        canvas = draw_background(rng, big)
    else:
        canvas = Image.new("RGB", (big, big), plain_background)
    draw_figure(ImageDraw.Draw(canvas), look, pose, big)
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


def black_frame(rng: np.random.Generator, size: int) -> Image.Image:
    """A fade-to-black frame: almost every pixel near zero, with a little sensor noise."""
    noise = rng.integers(0, 6, size=(size, size, 3), dtype=np.uint8)
    return Image.fromarray(noise, "RGB")


def blurred(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Heavy motion-like blur, far beyond what a sharp frame shows."""
    return image.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(5.0, 8.0)) * image.width / 256))


def near_duplicate(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The next film frame of a held shot: a one-pixel shift and a tiny brightness change."""
    pixels = np.asarray(image).astype(np.int16)
    pixels = np.roll(pixels, shift=int(rng.choice([-1, 1])), axis=1) + int(rng.integers(-3, 4))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
