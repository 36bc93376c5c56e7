"""``--set key=value`` overrides, parsed as TOML literals so that types survive the command line."""

from __future__ import annotations

import toml

from orchestrator.common.errors import UserInputError


def parse_value(text: str) -> object:
    """``64`` -> 64, ``1e-4`` -> 0.0001, ``true`` -> True, ``[1, 2]`` -> [1, 2]; anything else is a string."""
    try:
        return toml.loads(f"value = {text}")["value"]
    except (toml.TomlDecodeError, IndexError, KeyError):
        return text


def parse_set_overrides(items: list[str] | None) -> dict[str, object]:
    overrides: dict[str, object] = {}
    for item in items or []:
        key, separator, raw = item.partition("=")
        key = key.strip()
        if not separator or not key:
            raise UserInputError(f"--set expects key=value, got {item!r}", key=item)
        overrides[key] = parse_value(raw.strip())
    return overrides
