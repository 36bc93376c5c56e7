"""Reading a TOML file the user gave us: every failure names the file and says what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import toml

from orchestrator.common.errors import UserInputError


def read_toml(path: str | Path, *, what: str = "file") -> dict[str, Any]:
    """Parse ``path``; ``what`` names the file in messages ("evaluation config", "preset", ...)."""
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{what} not found", path=path)
    if not path.is_file():
        raise UserInputError(f"{what} is not a file", path=path)
    try:
        return toml.load(path)
    except toml.TomlDecodeError as error:
        raise UserInputError(f"malformed TOML: {error}", path=path) from error
    except (OSError, UnicodeDecodeError) as error:
        raise UserInputError(f"cannot read {what}: {error}", path=path) from error
