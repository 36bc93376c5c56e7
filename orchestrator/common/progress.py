"""One progress bar style for every long loop: count, rate, elapsed and ETA."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

_console = Console(stderr=True)


def progress_bar(*, unit: str = "it", transient: bool = False) -> Progress:
    """A rich ``Progress`` with ``N/M``, percent, ``unit/s``, elapsed and ETA columns."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("[cyan]{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=_console,
        transient=transient,
    )


def track(items: Iterable[T], *, total: int | None, description: str, unit: str = "it") -> Iterator[T]:
    """Iterate ``items`` with a progress bar showing ``unit/s`` and ETA on stderr."""
    with progress_bar(unit=unit) as progress:
        task = progress.add_task(description, total=total, rate="")
        for item in items:
            yield item
            progress.advance(task)
            speed = next(t for t in progress.tasks if t.id == task).speed
            progress.update(task, rate=f"{speed:.2f} {unit}/s" if speed else "")
