"""Character profiles: the fixed text of every caption, one YAML file per character.

A profile holds what never changes between two images of the same character (who it is, the rendering
and shader vocabulary) and what the VLM must not invent (hair colour, eye colour, ...). Identity wording
therefore comes from this file verbatim; the VLM only describes what varies.

Example (``configs/characters/luca.yaml``)::

    name: Luca Paguro
    film: Luca
    year: 2021
    trigger: Luca Paguro from Pixar Luca (2021)
    description: [12-year-old Italian pre-teen boy, large round brown eyes]
    rendering_terms: [uniform lighting, even illumination]
    material_terms: [smooth shading, subsurface scattering on skin]
    forbidden: [eye colour, hair colour, age]

Every key above is required; ``studio`` (default ``Pixar``) and ``template`` are optional.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

from orchestrator.common.errors import UserInputError, one_line

#: The slots of a caption template. ``character`` comes from the profile; ``rendering`` and the fixed
#: part of ``lighting_materials`` too; ``pose_expression`` and the rest come from the VLM.
TEMPLATE_FIELDS: tuple[str, ...] = ("rendering", "character", "pose_expression", "lighting_materials")

DEFAULT_TEMPLATE = (
    "a 3d animated character, pixar {rendering}, {character}, {pose_expression}, "
    "pixar film quality, {lighting_materials}"
)

_REQUIRED_KEYS: tuple[str, ...] = (
    "name", "film", "year", "trigger", "description", "rendering_terms", "material_terms", "forbidden",
)
_OPTIONAL_KEYS: tuple[str, ...] = ("studio", "template")
_LIST_KEYS = {"description", "rendering_terms", "material_terms", "forbidden"}


@dataclass(frozen=True)
class CharacterProfile:
    """One character's fixed caption text; build it with :func:`load_profile`."""

    name: str
    film: str
    year: int
    trigger: str
    description: tuple[str, ...]
    rendering_terms: tuple[str, ...]
    material_terms: tuple[str, ...]
    forbidden: tuple[str, ...]
    studio: str = "Pixar"
    template: str = DEFAULT_TEMPLATE
    source: Path | None = None

    @property
    def character_text(self) -> str:
        """The identity wording, identical in every caption: trigger phrase, then the description."""
        return ", ".join((self.trigger, *self.description))


def template_fields(template: str) -> list[str]:
    """The ``{field}`` names a template uses, in order (``string.Formatter`` grammar)."""
    return [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]


def check_template(template: str, *, path: Path | None = None) -> None:
    """Raise :class:`UserInputError` for an unknown field or a template without ``{character}``."""
    try:
        used = template_fields(template)
    except ValueError as error:  # unbalanced braces
        raise UserInputError(f"malformed template: {error}", path=path, key="template") from error
    unknown = [field for field in used if field not in TEMPLATE_FIELDS]
    if unknown:
        raise UserInputError(
            f"unknown template field {{{unknown[0]}}}; known fields: "
            + ", ".join(f"{{{f}}}" for f in TEMPLATE_FIELDS),
            path=path, key="template",
        )
    if "character" not in used:
        raise UserInputError(
            "template must contain {character}: the identity text is what the LoRA learns",
            path=path, key="template",
        )


def profile_from_mapping(data: object, *, path: Path | None = None) -> CharacterProfile:
    """Validate a parsed profile document: every missing or unknown key is named."""
    if not isinstance(data, dict):
        raise UserInputError("a character profile must be a YAML mapping of keys to values", path=path)
    missing = [key for key in _REQUIRED_KEYS if key not in data]
    if missing:
        raise UserInputError(
            f"missing required key(s) {missing}; a profile needs {list(_REQUIRED_KEYS)}",
            path=path, key=missing[0],
        )
    unknown = sorted(str(key) for key in data if key not in _REQUIRED_KEYS + _OPTIONAL_KEYS)
    if unknown:
        raise UserInputError(
            f"unknown key(s) {unknown}; allowed: {list(_REQUIRED_KEYS + _OPTIONAL_KEYS)}",
            path=path, key=unknown[0],
        )
    values: dict[str, object] = {}
    for key in _REQUIRED_KEYS + _OPTIONAL_KEYS:
        if key not in data:
            continue
        value = data[key]
        if key in _LIST_KEYS:
            values[key] = _phrase_list(value, path=path, key=key)
        elif key == "year":
            if isinstance(value, bool) or not isinstance(value, int):
                raise UserInputError(f"must be a year such as 2021, got {value!r}", path=path, key=key)
            values[key] = value
        else:
            if not isinstance(value, str) or not value.strip():
                raise UserInputError(f"must be a non-empty string, got {value!r}", path=path, key=key)
            values[key] = " ".join(value.split())
    if not values["description"]:
        raise UserInputError("must list at least one identity phrase", path=path, key="description")
    check_template(str(values.get("template", DEFAULT_TEMPLATE)), path=path)
    return CharacterProfile(**values, source=path)  # type: ignore[arg-type]


def load_profile(path: str | Path) -> CharacterProfile:
    """Read and validate a character profile YAML file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserInputError("character profile not found", path=path,
                             hint="profiles live in configs/characters/, e.g. configs/characters/luca.yaml")
    try:
        data = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as error:
        raise UserInputError(f"not UTF-8 text ({error.reason} at byte {error.start})", path=path,
                             hint="save the profile as UTF-8") from error
    except yaml.YAMLError as error:
        raise UserInputError(f"malformed YAML: {one_line(error)}", path=path) from error
    return profile_from_mapping(data, path=path)


def _phrase_list(value: object, *, path: Path | None, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise UserInputError(f"must be a list of phrases, got {value!r}", path=path, key=key)
    # A phrase is a caption segment: commas inside it would split it during normalisation.
    phrases = [" ".join(item.split()) for item in value]
    bad = next((item for item in phrases if not item or "," in item), None)
    if bad is not None:
        raise UserInputError(f"phrases must be non-empty and comma-free, got {bad!r}", path=path, key=key)
    return tuple(phrases)
