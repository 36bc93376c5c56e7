"""Caption assembly: the profile's fixed text plus the VLM's scene, poured into the template.

The default template (see :data:`orchestrator.captions.profile.DEFAULT_TEMPLATE`)::

    a 3d animated character, pixar {rendering}, {character}, {pose_expression},
    pixar film quality, {lighting_materials}

``{rendering}`` and ``{character}`` are profile text only, so identity wording is identical in every
caption; ``{pose_expression}`` is the VLM's expression, pose, action and setting; ``{lighting_materials}``
is the VLM's lighting, the profile's shader vocabulary, then the VLM's materials.
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


def assemble_caption(profile: CharacterProfile, scene: SceneDescription) -> str:
    """One normalised caption line for an image."""
    return normalise_caption(profile.template.format_map(template_values(profile, scene)))


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
