"""``--set key=value`` overrides, parsed as TOML literals so that types survive the command line."""

from __future__ import annotations

from orchestrator.common.errors import UserInputError
from orchestrator.common.tomlfile import TOMLDecodeError, parse_toml

# A value that starts like a TOML list, table or quoted string was meant as one: a typo in it is an
# error, not a string that happens to start with a bracket.
_TOML_OPENERS = ("[", "{", '"', "'")


def parse_value(text: str, *, key: str | None = None) -> object:
    """``64`` -> 64, ``1e-4`` -> 0.0001, ``true`` -> True, ``[1, 2]`` -> [1, 2]; a bare word is a string.

    A malformed list, table or quoted string (``[1,``) raises :class:`UserInputError` naming ``key``.
    """
    try:
        return parse_toml(f"value = {text}")["value"]
    except (TOMLDecodeError, IndexError, KeyError, ValueError) as error:
        if text.startswith(_TOML_OPENERS):
            raise UserInputError(f"--set value {text!r} is not a valid TOML value ({error})", key=key,
                                 hint="write lists as [1, 2], strings as \"text\"") from None
        return text


def parse_set_overrides(items: list[str] | None) -> dict[str, object]:
    overrides: dict[str, object] = {}
    for item in items or []:
        key, separator, raw = item.partition("=")
        key = key.strip()
        if not separator or not key:
            raise UserInputError(f"--set expects key=value, got {item!r}", key=item)
        if key in overrides:  # the second would silently win: say which one the user meant
            raise UserInputError("given twice with --set; give it once", key=key)
        overrides[key] = parse_value(raw.strip(), key=key)
    return overrides
