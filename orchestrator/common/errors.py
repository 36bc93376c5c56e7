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


def one_line(error: object, *, limit: int = 300) -> str:
    """A library's error text as one line of at most ``limit`` characters, to quote inside a message:
    PyYAML marks the column on a second line, torch.load explains itself in paragraphs."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_environment_error(error: BaseException) -> str | None:
    """One line for a failure of the outside world (a file, a database, a malformed file), else None.

    The CLI prints it instead of a traceback; anything this does not recognise is a bug and keeps its
    traceback.
    """
    if isinstance(error, OSError):
        names = " -> ".join(str(n) for n in (error.filename, error.filename2) if n is not None)
        reason = error.strerror or str(error)
        return f"{names}: {reason}" if names else reason
    if isinstance(error, RuntimeError) and str(error).startswith("Symlink loop from "):
        # Path.resolve() on Python < 3.13 reports a link cycle this way (later ones raise OSError ELOOP).
        where = str(error).removeprefix("Symlink loop from ").strip("'\"")
        return f"{where}: symlink loop (a link that leads back to itself)"
    if isinstance(error, UnicodeDecodeError):
        return f"a file is not UTF-8 text ({error.reason} at byte {error.start})"
    module = type(error).__module__
    if module.startswith("sqlalchemy"):
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()
        return f"database: {type(error).__name__}: {detail[0] if detail else ''}"
    if module.startswith(("toml", "tomllib", "tomli")) and "Decode" in type(error).__name__:
        return f"malformed TOML: {error}"
    if type(error).__name__ == "JSONDecodeError":
        return f"malformed JSON: {error}"
    return None


def require_folder_target(folder: str | Path, *, key: str) -> Path:
    """``folder`` as an output folder: it is a folder or can become one (no file in its place or above).

    Checked before anything is written, so ``--out a_file`` is one clear message instead of an
    ``OSError`` half-way through a run.
    """
    folder = Path(folder)
    for candidate in (folder, *folder.parents):
        if candidate.exists() or candidate.is_symlink():
            if not candidate.is_dir():
                what = "is a file" if candidate == folder else f"lies under {candidate}, which is a file"
                raise UserInputError(f"output folder {what}; give a folder", path=folder, key=key)
            break
    return folder


def require_output_apart(folder: str | Path, *, key: str, inputs: dict[str, str | Path],
                         allow_inside: frozenset[str] = frozenset()) -> Path:
    """``folder`` when it is none of the ``inputs`` folders (``{role: folder}``) and lies in none of them.

    An output inside an input is read back as input on the next run (crops among the references), and one
    equal to it writes over the input's own files (a crop named like a reference); a stage whose output may
    live inside an input and is skipped there names that input in ``allow_inside``."""
    real = Path(folder).resolve()
    for role, source in inputs.items():
        real_source = Path(source).resolve()
        if real == real_source or (role not in allow_inside and real.is_relative_to(real_source)):
            where = "is" if real == real_source else "lies inside"
            raise UserInputError(f"the output folder {where} the {role} folder {source}, which is only read",
                                 path=folder, key=key, hint=f"choose an --{key} outside it")
    return Path(folder)
