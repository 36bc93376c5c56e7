"""TOML in and out: one reader that names the file in every failure, one writer for the files we render.

Reading uses the standard library's TOML 1.0 parser (``tomli`` on Python 3.10), writing uses ``tomli-w``.
TOML has no null, so a key whose value is ``None`` is left out of what is written (it means "not set").
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

import tomli_w

from orchestrator.common.atomic import atomic_write_text
from orchestrator.common.errors import UserInputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

TOMLDecodeError = tomllib.TOMLDecodeError


def parse_toml(text: str) -> dict[str, Any]:
    """Parse a TOML document; raises ``TOMLDecodeError`` (a ``ValueError``) when it is malformed."""
    return tomllib.loads(text)


def read_toml(path: str | Path, *, what: str = "file") -> dict[str, Any]:
    """Parse ``path``; ``what`` names the file in messages ("evaluation config", "preset", ...)."""
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{what} not found", path=path)
    if not path.is_file():
        raise UserInputError(f"{what} is not a file", path=path)
    try:
        # utf-8-sig: a byte-order mark (Windows editors write one) is read past, not a syntax error.
        return parse_toml(path.read_bytes().decode("utf-8-sig"))
    except TOMLDecodeError as error:
        raise UserInputError(f"malformed TOML: {error}", path=path) from error
    except (OSError, UnicodeDecodeError) as error:
        raise UserInputError(f"cannot read {what}: {error}", path=path) from error


def dumps_toml(document: Mapping[str, Any]) -> str:
    """``document`` as TOML text: ``None`` values are left out, paths are written as strings."""
    return tomli_w.dumps(_encodable(document))


def write_toml(path: str | Path, document: Mapping[str, Any], *, header: str = "") -> Path:
    """Write ``header`` (comment lines, or nothing) and ``document`` to ``path`` atomically."""
    return atomic_write_text(path, header + dumps_toml(document))


def _encodable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _encodable(item) for key, item in value.items() if item is not None}
    if isinstance(value, (list, tuple)):
        return [_encodable(item) for item in value]
    if isinstance(value, PurePath):
        return str(value)
    return value
