"""Caption assembly: the profile's fixed text plus the VLM's scene, poured into the template.

The default template (see :data:`orchestrator.captions.profile.DEFAULT_TEMPLATE`)::

    a 3d animated character, pixar {rendering}, {character}, {pose_expression},
    pixar film quality, {lighting_materials}

``{rendering}`` and ``{character}`` are profile text only, so identity wording is identical in every
caption; ``{pose_expression}`` is the VLM's expression, pose, action and setting; ``{lighting_materials}``
is the VLM's lighting, the profile's shader vocabulary, then the VLM's materials.

That is a tag list, what CLIP reads well (SD1.5, SDXL). FLUX.1, Chroma and SD3.5 read the caption through
T5, trained on sentences: for them (``caption_style = "sentences"`` in ``kohya/families.py``)
:func:`assemble_sentence_caption` writes the same profile and scene as prose, trigger phrase first::

    A 3D animated film still of Luca Paguro from Pixar Luca (2021), a 12-year-old Italian boy with large
    round brown eyes and short curly dark brown hair. The character is shown standing, three-quarter view, with a
    concerned expression, looking at the sea, near the water edge. The light is warm sunset light; the
    surfaces show smooth shading, subsurface scattering and wet shirt. Rendered in Pixar film quality
    with uniform lighting and even illumination.

(The second sentence's subject is "The character": the tool never guesses a pronoun.)
"""

from __future__ import annotations

import re

from orchestrator.captions.profile import CharacterProfile
from orchestrator.captions.scene import SceneDescription


def template_values(profile: CharacterProfile, scene: SceneDescription) -> dict[str, str]:
    """The text for each template field (empty fields are dropped by :func:`normalise_caption`)."""
    return {
        "rendering": ", ".join(profile.rendering_terms),
        "character": profile.character_text,
        "pose_expression": _join(scene.expression, scene.pose, scene.action, scene.setting),
        "lighting_materials": _join(scene.lighting, *profile.material_terms, scene.materials),
    }


def assemble_caption(profile: CharacterProfile, scene: SceneDescription, *, style: str = "tags") -> str:
    """One normalised caption line for an image, as a tag list or (``style="sentences"``) as prose."""
    if style == "sentences":
        return assemble_sentence_caption(profile, scene)
    if style != "tags":
        raise ValueError(f"caption style must be 'tags' or 'sentences', got {style!r}")
    return normalise_caption(profile.template.format_map(template_values(profile, scene)))


def assemble_sentence_caption(profile: CharacterProfile, scene: SceneDescription) -> str:
    """The profile and scene as sentences for a T5-reading family; the trigger phrase comes first, verbatim."""
    description = list(profile.description)
    who = profile.trigger
    if description:
        who += f", {_article(description[0])}" + (f" with {_and(description[1:])}" if description[1:] else "")
    sentences = [f"A 3D animated film still of {who}"]
    shown = [part for part in (scene.pose, f"with {_article(scene.expression)}" if scene.expression else "",
                               scene.action, scene.setting) if part]
    if shown:
        sentences.append("The character is shown " + ", ".join(shown))
    surfaces = [*profile.material_terms, *([scene.materials] if scene.materials else [])]
    light = f"The light is {scene.lighting}" if scene.lighting else ""
    if surfaces:
        light += ("; the" if light else "The") + f" surfaces show {_and(surfaces)}"
    if light:
        sentences.append(light)
    rendering = f" with {_and(list(profile.rendering_terms))}" if profile.rendering_terms else ""
    sentences.append(f"Rendered in {profile.studio} film quality{rendering}")
    text = ". ".join(" ".join(s.split()).rstrip(" .,;") for s in sentences) + "."
    return _REPEATED_WORDS_RE.sub(r"\1", text)


def _and(parts: list[str]) -> str:
    parts = [p for p in parts if p]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1] if parts else ""


_DETERMINERS = {"a", "an", "the", "his", "her", "their", "its"}


def _article(phrase: str) -> str:
    """``a``/``an`` before a noun phrase that has none (a number or a plural is left alone)."""
    first = phrase.split(" ", 1)[0].lower()
    if first in _DETERMINERS or (first.endswith("s") and not first[:1].isdigit()):
        return phrase
    return ("an " if first[:1] in "aeiou" else "a ") + phrase


_SPACE_BEFORE_PUNCT_RE = re.compile(r"\s+([,.;:!?])")
# A word or short word group repeated back to back ("mater mater mater"): VLM loops, kept once.
_REPEATED_WORDS_RE = re.compile(r"\b(\w+(?:\s+\w+){0,3})(?:\s+\1\b)+", re.IGNORECASE)
_EDGE_PUNCT = " .;:!?-'\""


def normalise_caption(text: str) -> str:
    """Whitespace collapsed, one ", " between phrases, no empty or repeated phrase, no final stop.

    Phrases are compared case-insensitively and the first occurrence wins, so profile text (which
    comes before the VLM's in the template) is never the copy that is dropped.
    """
    text = " ".join(text.split())
    text = _SPACE_BEFORE_PUNCT_RE.sub(r"\1", text)
    text = text.replace(";", ",")
    seen: set[str] = set()
    phrases = []
    for phrase in text.split(","):
        phrase = _REPEATED_WORDS_RE.sub(r"\1", phrase.strip().strip(_EDGE_PUNCT).strip())
        key = phrase.lower()
        if not phrase or key in seen:
            continue
        seen.add(key)
        phrases.append(phrase)
    return ", ".join(phrases)


def _join(*parts: str) -> str:
    return ", ".join(part for part in parts if part)
