"""Reading a trainer's growing log incrementally and folding its events into a run record."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.kohya.log_grammar import EpochStarted, Finished, LogEvent, LogParser, SamplesGenerated
from orchestrator.kohya.outputs import find_samples
from orchestrator.runner.record import RunRecord

EventCallback = Callable[[LogEvent, RunRecord], None]
_CHUNK = 1 << 20


class LogTail:
    """Reads a growing log incrementally and folds its events into a record (in memory)."""

    def __init__(self, record: RunRecord) -> None:
        self.record = record
        self.parser = LogParser()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stream: Any = None

    def poll(self, on_event: EventCallback | None = None) -> bool:
        """Read what was appended since the last call; True when the log grew."""
        if self._stream is None:
            path = Path(self.record.log_path or "")
            if not path.is_file():
                return False
            self._stream = open(path, "rb")
        grew = False
        while chunk := self._stream.read(_CHUNK):
            grew = True
            self._apply(self.parser.feed(self._decoder.decode(chunk)), on_event)
        return grew

    def close(self, on_event: EventCallback | None = None) -> None:
        self.poll(on_event)
        self._apply(self.parser.feed(self._decoder.decode(b"", final=True)) + self.parser.close(), on_event)
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def _apply(self, events: list[LogEvent], on_event: EventCallback | None) -> None:
        for event in events:
            self.record.apply(event)
            # Sample files appear after their log line: look again when the next epoch starts too.
            if isinstance(event, (SamplesGenerated, EpochStarted, Finished)):
                refresh_samples(self.record)
            if on_event is not None:
                on_event(event, self.record)


def refresh_samples(record: RunRecord) -> None:
    samples, _ = find_samples(record.run_dir, record.output_name)
    for sample in samples:
        if sample.epoch is not None:
            record.samples[str(sample.epoch)] = []
    for sample in samples:
        if sample.epoch is not None:
            record.samples[str(sample.epoch)].append(str(sample.path))
