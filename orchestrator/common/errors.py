"""Errors a person can act on.

Every stage raises :class:`UserInputError` for bad input (it names the file and the problem);
the CLI prints the message without a traceback and exits non-zero.
"""

from __future__ import annotations

from pathlib import Path


class PipelineError(Exception):
    """A failure the CLI reports as one clear message and exit code ``exit_code``."""

    exit_code = 1


class UserInputError(PipelineError):
    """Bad input: a file, key or value the user supplied is wrong.

    ``path`` and ``key`` are folded into the message so that every report names what to fix.
    """

    exit_code = 2

    def __init__(self, message: str, *, path: str | Path | None = None, key: str | None = None,
                 hint: str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.key = key
        self.hint = hint
        where = ""
        if path is not None:
            where = f"{path}"
            if key:
                where += f": key '{key}'"
            where += ": "
        elif key:
            where = f"key '{key}': "
        text = where + message
        if hint:
            text += f" ({hint})"
        super().__init__(text)
