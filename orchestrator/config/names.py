"""The one rule for an ``output_name``: sd-scripts joins it to ``output_dir`` as a file-name stem.

``luca/v2`` would nest folders (the trainer dies at its first save), ``../escaped`` or ``/abs`` would
write outside the run folder, and a newline would break the rendered TOML, so the name must be a plain
stem wherever it comes from (a preset, ``--set``, a search space).
"""

from __future__ import annotations

import unicodedata

from orchestrator.common.errors import UserInputError

MAX_OUTPUT_NAME_LENGTH = 120  # leaves room for "-000012.safetensors" and sample names under 255 bytes


def output_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be an output name, or None when it can."""
    if not isinstance(name, str):
        return f"must be text, got {type(name).__name__} {name!r}"
    if not name.strip():
        return "must not be empty"
    if name != name.strip():
        return f"{name!r} has leading or trailing spaces"
    if any(unicodedata.category(char).startswith("C") for char in name):
        return f"{name!r} holds a control character (newline, tab, ...)"
    if "/" in name or "\\" in name:
        return f"{name!r} holds a path separator; it is a file-name stem, not a path"
    if name in (".", "..") or name.startswith("."):
        return f"{name!r} starts with '.'; it would be hidden or leave the run folder"
    if len(name.encode("utf-8")) > MAX_OUTPUT_NAME_LENGTH:
        return f"is {len(name.encode('utf-8'))} bytes long; at most {MAX_OUTPUT_NAME_LENGTH}"
    return None


def check_output_name(name: object, *, path: object = None, key: str = "output_name") -> str:
    """``name`` when it is a plain file-name stem; else :class:`UserInputError` naming where it came from."""
    problem = output_name_problem(name)
    if problem is not None:
        raise UserInputError(f"{problem} (letters, digits, '_', '-', '.' inside the name)", path=path, key=key)
    return str(name)
