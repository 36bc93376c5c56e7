"""What the VLM is asked for, and how its answer is read back.

The VLM describes only what varies between images (the :data:`SCENE_FIELDS`), one labelled line each.
Its answer is untrusted text: a real model may add bullets, bold markers, JSON or chatter; a random-weight
model returns byte soup. :func:`parse_scene` never raises: it keeps what it can read, cleans it, drops
anything that names a forbidden identity trait, and leaves the rest of the fields empty.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields

from orchestrator.captions.profile import CharacterProfile

SCENE_FIELDS: tuple[str, ...] = ("pose", "expression", "action", "setting", "lighting", "materials")

_FIELD_QUESTIONS: dict[str, str] = {
    "pose": "body pose and camera framing (e.g. standing, three-quarter view, close-up)",
    "expression": "facial expression (e.g. concerned expression with furrowed brows)",
    "action": "what the character is doing or looking at",
    "setting": "where the character is (e.g. near water edge, village street)",
    "lighting": "the light in the shot (e.g. warm sunset light, soft overcast light)",
    "materials": "visible clothing or surface materials (e.g. wet shirt, sand on feet)",
}
_MAX_WORDS_PER_FIELD = 8
_EMPTY_ANSWERS = {"", "none", "n/a", "na", "unknown", "not visible", "nothing", "no", "-"}


@dataclass(frozen=True)
class SceneDescription:
    """The varying part of one caption; an empty string means "the VLM gave nothing usable"."""

    pose: str = ""
    expression: str = ""
    action: str = ""
    setting: str = ""
    lighting: str = ""
    materials: str = ""

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))


def build_prompt(profile: CharacterProfile) -> str:
    """The instruction sent with each image: labelled lines for the varying fields only."""
    lines = [
        f"This image shows {profile.name} from the {profile.studio} film {profile.film} ({profile.year}).",
        "Describe only what varies in this shot. Answer with exactly these six lines, "
        "a few words each, no other text:",
    ]
    lines += [f"{name}: <{_FIELD_QUESTIONS[name]}>" for name in SCENE_FIELDS]
    if profile.forbidden:
        lines.append(
            "Do not describe the character's identity or appearance: never mention "
            + ", ".join(profile.forbidden) + "."
        )
    lines.append('Write "none" for a line you cannot see.')
    return "\n".join(lines)


def parse_scene(answer: str, *, forbidden: tuple[str, ...] = ()) -> SceneDescription:
    """Read the VLM's answer (labelled lines or a JSON object); never raises."""
    raw = _parse_json(answer) or _parse_labelled_lines(answer)
    values = {}
    for name in SCENE_FIELDS:
        values[name] = _clean_value(raw.get(name, ""), forbidden=forbidden)
    return SceneDescription(**values)


# "material", "materials", "Poses": every singular/plural spelling names its field.
_LABELS: dict[str, str] = {
    alias: name for name in SCENE_FIELDS for alias in (name, name.rstrip("s"), name.rstrip("s") + "s")
}
_LABEL_RE = re.compile(
    r"^[\s\-*•#>\d.)]*\**\s*(?P<label>" + "|".join(sorted(_LABELS, key=len, reverse=True))
    + r")\s*\**\s*[:=\-–]\s*(?P<value>.*)$",
    re.IGNORECASE,
)


def _parse_labelled_lines(answer: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in answer.splitlines():
        match = _LABEL_RE.match(line)
        if match:
            found.setdefault(_LABELS[match["label"].lower()], match["value"])
    return found


def _parse_json(answer: str) -> dict[str, str] | None:
    start, end = answer.find("{"), answer.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(answer[start : end + 1])
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    found = {}
    for key, value in data.items():
        name = _LABELS.get(str(key).strip().lower())
        if name is not None:
            found[name] = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return found


# Only plain caption characters survive; everything else (control bytes, U+FFFD, emoji, markup)
# becomes a space so that byte soup from a random model cannot reach a training caption.
_DISALLOWED_CHARS_RE = re.compile(r"[^A-Za-z0-9 ,'\-]")
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d+")


def _clean_value(value: str, *, forbidden: tuple[str, ...]) -> str:
    text = _DISALLOWED_CHARS_RE.sub(" ", value)
    phrases = []
    for phrase in text.split(","):
        words = _WORD_RE.findall(phrase)
        phrase = " ".join(words)
        if phrase.lower() in _EMPTY_ANSWERS or not any(len(w) > 1 for w in words):
            continue
        if _mentions_forbidden(phrase, forbidden):
            continue
        phrases.append(phrase)
    words_kept: list[str] = []
    kept_phrases = []
    for phrase in phrases:
        words = phrase.split()
        room = _MAX_WORDS_PER_FIELD - len(words_kept)
        if room <= 0:
            break
        kept_phrases.append(" ".join(words[:room]))
        words_kept += words[:room]
    return ", ".join(kept_phrases)


def _mentions_forbidden(phrase: str, forbidden: tuple[str, ...]) -> bool:
    # Literal, whole-word match (a trailing plural "s" allowed): predictable for the profile's author.
    lowered = phrase.lower()
    return any(re.search(rf"\b{re.escape(term.lower())}s?\b", lowered) for term in forbidden)
