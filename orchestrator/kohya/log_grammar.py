"""sd-scripts' console output, read as a stream of events.

The grammar is derived from the real transcripts in ``shared/sd-scripts-contract/`` (pinned commit):

- tqdm bars write to stderr with ``\\r`` only (``steps:  50%|...| 3/6 [00:06<00:06,  2.32s/it,
  avr_loss=1.15]``), twice per step (the second carries the new ``avr_loss``), and re-draw themselves
  when they close; validation bars add cursor-up escapes (``ESC[A``) and a later log line may follow
  the escape on the same physical line;
- rich logging (the default) prefixes ``YYYY-mm-dd HH:MM:SS LEVEL`` (or only the level), right-aligns
  ``file.py:NNN`` and wraps long messages onto lines indented by 29 spaces; ``--console_log_simple``
  prints the bare message;
- ``print`` lines (``running training``, ``epoch 1/2``, ``saving checkpoint: PATH``) are never wrapped.

Segments are split at ``\\n``, ``\\r`` and cursor-movement escapes, so a progress bar and a log line that
share a physical line are read as two segments. Memory stays constant: only the unfinished tail of the
stream, the rich record being joined and a bounded window of recent lines are kept.

Success is decided by the caller from :class:`Finished` plus the final checkpoint on disk, never from
the exit code: sd-scripts exits 0 when it finds no data.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field

from orchestrator.kohya.log_events import (  # re-exported: the grammar's public vocabulary
    FAILURE_CAUSES,
    CheckpointSaved,
    EpochStarted,
    Failure,
    Finished,
    LogEvent,
    RunSummary,
    SamplesGenerated,
    StateSaved,
    StepProgress,
    ValidationLoss,
)
from orchestrator.kohya.log_fields import (
    avr_loss_text,
    join_wrapped,
    parse_number,
    seconds_per_iteration,
    validation_progress,
)

__all__ = ["FAILURE_CAUSES", "CheckpointSaved", "EpochStarted", "Failure", "Finished", "LogEvent", "LogParser",
           "RunSummary", "SamplesGenerated", "StateSaved", "StepProgress", "ValidationLoss", "parse_text"]

# --- lexical layer -------------------------------------------------------------------------------

# Segment boundaries: newline, carriage return, and cursor movement / erase escapes (tqdm's ESC[A).
_SEGMENT_SPLIT = re.compile(r"\r\n|[\r\n]|\x1b\[[0-9;?]*[A-HJKST]")
_OTHER_ESCAPES = re.compile(r"\x1b(?:\[[0-9;?]*[a-zA-Z]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][0-9A-B])")
_RICH_HEADER = re.compile(
    r"^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d |\s{20})(?:DEBUG|INFO|WARNING|ERROR|CRITICAL) +(?P<message>.*?)"
    r"(?:\s+[\w.\-]+\.py:\d+)?\s*$"
)
_RICH_INDENT = " " * 29

# --- line grammar --------------------------------------------------------------------------------

_EPOCH = re.compile(r"^epoch (\d+)/(\d+)$")
_SUMMARY_NUMBER = re.compile(r"(?::|=)\s*(\d+)\s*$")
_SUMMARY_KEYS = {
    "num train images * repeats": "images_x_repeats",
    "num batches per epoch": "batches_per_epoch",
    "num epochs": "epochs",
    "gradient accumulation steps": "grad_accum",
    "total optimization steps": "total_steps",
}
_SAMPLES = re.compile(r"^generating sample images at step\b.*?(\d+)\s*$")
_STATE_AT_EPOCH = re.compile(r"^saving state at epoch (\d+)")
_EXCEPTION_LINE = re.compile(r"^(?P<name>[A-Za-z_][\w.]*(?:Error|Exception|Invalid|Interrupt|Exit))\b:?(?P<rest>.*)$")
_ARGPARSE_ERROR = re.compile(r"^\S+\.py: error: ")
_OOM_MARKERS = ("CUDA out of memory", "OutOfMemoryError", "CUDA error: out of memory")
_IMPORT_ERRORS = ("ImportError", "ModuleNotFoundError")
_CONTEXT_LINES = 40
_BULK_CHARS = 1 << 16  # a line this long with more than _BULK_DRAWINGS bar drawings is a backlog,
_BULK_DRAWINGS = 1024
_BULK_SAMPLES = 64  # sampled at this many windows


@dataclass
class _Progress:
    """What the parser knows so far; the runner reads it for the live screen."""

    epoch: int = 0
    total_epochs: int | None = None
    summary: dict[str, int] = field(default_factory=dict)
    last_validation: tuple[int, float] | None = None
    in_traceback: bool = False
    traceback_lines: list[str] = field(default_factory=list)
    failure: Failure | None = None
    finished: bool = False


class LogParser:
    """Incremental parser: ``feed`` text as it arrives, get events back; ``close`` at end of stream.

    >>> parser = LogParser()
    >>> parser.feed("epoch 1/2\\n\\rsteps:  17%|x| 1/6 [00:01<00:05,  1.13s/it, avr_loss=1.06]")
    [EpochStarted(epoch=1, total_epochs=2)]
    >>> parser.close()
    [StepProgress(step=1, total_steps=6, epoch=1, avr_loss=1.06, s_per_it=1.13)]
    """

    def __init__(self) -> None:
        self._tail = ""
        self._record: list[str] = []  # a rich record whose continuation lines may still come
        self.recent: deque[str] = deque(maxlen=_CONTEXT_LINES)
        self.state = _Progress()
        self._pending_step: tuple[str, str, str, str] | None = None  # step, total, bracket, drawing
        self._pending_validation: float | None = None  # a completed validation bar's loss, maybe stale
        self._validation_open = False  # a validation bar drew 0/N and no other line came since
        self._last_step: tuple[str, str] | None = None

    # -- public --

    @property
    def failure(self) -> Failure | None:
        return self.state.failure

    @property
    def finished(self) -> bool:
        return self.state.finished

    def feed(self, text: str) -> list[LogEvent]:
        events: list[LogEvent] = []
        lines = (self._tail + text).split("\n")
        last = lines.pop()
        cut = last.rfind("\r")
        self._tail = last[cut + 1:]  # unfinished: the next chunk may extend it
        for line in lines:
            self._physical_line(line, events)
        if cut > 0:
            self._physical_line(last[:cut], events)
        pending = self._pending_step
        if pending is not None and not math.isfinite(parse_number(avr_loss_text(pending[2]) or "0") or 0.0):
            self._flush_step(events)  # a NaN/inf loss must not wait for the next drawing
        return events

    def close(self) -> list[LogEvent]:
        events: list[LogEvent] = []
        tail, self._tail = self._tail, ""
        self._pieces([tail], events)
        self._flush_step(events)
        self._flush_validation(events)
        self._flush_record(events)
        self._end_traceback(events)
        return events

    def _physical_line(self, line: str, events: list[LogEvent]) -> None:
        if len(line) > _BULK_CHARS and "\x1b" not in line:
            drawings = line.count("\r")
            if drawings > _BULK_DRAWINGS and line.count("\rsteps:") >= drawings - 1:
                self._bulk_steps(line, events)
                return
        self._pieces(line.split("\r"), events)

    def _bulk_steps(self, line: str, events: list[LogEvent]) -> None:
        """Thousands of training-bar drawings on one line: a backlog (catching up on a long log).

        They are sampled with plain ``str.find``: windows of three consecutive drawings at
        ``_BULK_SAMPLES`` evenly spaced places, each giving the steps it shows in full, then the line's
        last drawings exactly. Live following reads a few drawings per poll, so every step is seen there.
        """
        first = line.find("\r")
        self._pieces([line[:first]], events)
        end = len(line)
        exact_from = line.rfind("\r", 0, line.rfind("\r", 0, line.rfind("\r")))
        for sample in range(_BULK_SAMPLES):
            start = line.find("\r", first + sample * (end - first) // _BULK_SAMPLES)
            stop = start
            for _ in range(3):
                stop = line.find("\r", stop + 1)
            if start < 0 or stop < 0 or stop > exact_from:
                break
            self._pieces(line[start + 1:stop].split("\r"), events)
            self._pending_step = None  # its fresh drawing may lie outside the window: not reported
        self._pieces(line[exact_from + 1:].split("\r"), events)

    def _pieces(self, pieces: list[str], events: list[LogEvent]) -> None:
        # Plain str.split and a prefix test keep the bulk of a log (the training bar) out of regexes.
        step = self._step
        for piece in pieces:
            if not piece:
                continue
            if "\x1b" in piece:
                for segment in _SEGMENT_SPLIT.split(piece):
                    self._segment(segment, events)
            elif piece.startswith("steps:"):
                step(piece, events)
            else:
                self._segment(piece, events)

    # -- segments --

    def _segment(self, segment: str, events: list[LogEvent]) -> None:
        if "\x1b" in segment:
            segment = _OTHER_ESCAPES.sub("", segment)
        stripped = segment.strip()
        if not stripped:
            return
        if stripped.startswith("steps:"):
            self._step(stripped, events)
            return
        self._flush_step(events)
        if stripped.startswith("epoch validation steps:"):
            self._validation(stripped)
            return
        self._flush_validation(events)
        if "%|" in stripped or stripped.endswith("it/s]"):
            return  # another tqdm bar (caching, loading, sampling)
        self.recent.append(stripped)
        if segment.startswith(_RICH_INDENT) and self._record:
            self._record.append(segment[29:].rstrip())
            return
        header = _RICH_HEADER.match(segment)
        self._flush_record(events)
        if header is not None:
            self._record = [header["message"].rstrip()]
            return
        self._line(segment.rstrip(), events)

    def _flush_record(self, events: list[LogEvent]) -> None:
        if not self._record:
            return
        parts, self._record = self._record, []
        self._line(join_wrapped(parts), events)

    # -- progress bars --

    def _step(self, text: str, events: list[LogEvent]) -> None:
        """A training-bar drawing: ``steps:  50%|█████     | 3/6 [00:06<00:06,  2.32s/it, avr_loss=1.15]``.

        Each step is drawn twice (the stale loss, then the fresh one), so a step is held back until a
        drawing of another step (or any other line) shows that its last drawing was seen.
        """
        if self._validation_open:
            self._flush_validation(events)
        bracket = text.find(" [", 6)
        bar_end = text.rfind("| ", 6, bracket)  # the bar's closing edge (an empty bar is all spaces)
        if bracket < 0 or bar_end < 0:
            return
        close = text.find("]", bracket)
        if close >= 0 and text[close + 1:].strip():  # a printed line glued after the drawing
            glued, text = text[close + 1:], text[:close + 1]
            self._step(text, events)
            self._segment(glued, events)
            return
        step_text, slash, total_text = text[bar_end + 2:bracket].strip().partition("/")
        inside = text[bracket + 2:]
        if not slash or "avr_loss=" not in inside:
            return  # the bare drawing before the first loss, or not a bar at all
        pending = self._pending_step
        if pending is not None:
            if pending[0] == step_text:
                self._pending_step = (step_text, total_text, inside, text)
                return
            self._flush_step(events)
        if self._last_step is not None and self._last_step[0] == step_text \
                and self._last_step[1] == avr_loss_text(inside):
            return  # a closing re-draw of the step already reported
        self._pending_step = (step_text, total_text, inside, text)

    def _flush_step(self, events: list[LogEvent]) -> None:
        pending = self._pending_step
        if pending is None:
            return
        self._pending_step = None
        step_text, total_text, inside, text = pending
        if not step_text.isdigit() or not total_text.isdigit():
            return
        loss_text = avr_loss_text(inside) or ""
        self._last_step = (step_text, loss_text)
        loss = parse_number(loss_text)
        step = int(step_text)
        events.append(StepProgress(step, int(total_text), self.state.epoch, loss, seconds_per_iteration(inside)))
        already_nan = self.state.failure is not None and self.state.failure.cause == "nan_loss"
        if loss is not None and not math.isfinite(loss) and not already_nan:
            self._fail(Failure("nan_loss", f"loss became {loss_text} at step {step}", (text,)), events)

    def _validation(self, text: str) -> None:
        """An epoch-validation drawing: ``epoch validation steps: 100%|...| 4/4 [..., val_epoch_avg_loss=1.07,
        timestep=800]``.

        Like a training step, the last pass is drawn twice (the loss of the passes before it, then the
        fresh one), so a completed bar is held until another line shows its last drawing was seen. sd-scripts
        never closes its bars: the old one re-draws itself (its last loss) just after the next bar's
        ``0/N`` (then the new bar's drawings replace it) and once more when the process ends, after other
        lines; a drawing outside an open bar is such a re-draw and is ignored.
        """
        progress = validation_progress(text)
        if progress is None:
            return
        done, total, loss = progress
        if done == 0:
            self._validation_open = True
        if self._validation_open:
            self._pending_validation = loss if done == total else None

    def _flush_validation(self, events: list[LogEvent]) -> None:
        self._validation_open = False
        loss, self._pending_validation = self._pending_validation, None
        if loss is None or (self.state.epoch, loss) == self.state.last_validation:
            return
        self.state.last_validation = (self.state.epoch, loss)
        events.append(ValidationLoss(self.state.epoch, loss))

    # -- logical lines --

    def _line(self, line: str, events: list[LogEvent]) -> None:
        text = line.strip()
        if self.state.in_traceback:
            self.state.traceback_lines.append(line)
            exception = _EXCEPTION_LINE.match(line)
            if exception is not None:
                self._exception(line, exception["name"], events)
            return
        if text.startswith("Traceback (most recent call last)") or "Traceback (most recent call last)" in text:
            self.state.in_traceback = True
            self.state.traceback_lines = [text]
            return
        if text.startswith("saving checkpoint: "):
            path = text[len("saving checkpoint: "):].strip()
            stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
            is_final = not re.search(r"-(?:\d{6,}|step\d{8,})$", stem)
            events.append(CheckpointSaved(self.state.epoch, path, is_final))
        elif text == "model saved.":
            self.state.finished = True
            events.append(Finished())
        elif match := _EPOCH.match(text):
            self.state.epoch = int(match[1])
            self.state.total_epochs = int(match[2])
            events.append(EpochStarted(int(match[1]), int(match[2])))
        elif text.startswith("saving last state"):
            events.append(StateSaved(self.state.epoch, True))
        elif match := _STATE_AT_EPOCH.match(text):
            events.append(StateSaved(int(match[1]), False))
        elif match := _SAMPLES.match(text):
            events.append(SamplesGenerated(self.state.epoch, int(match[1])))
        elif text.startswith("No data found"):
            self._fail(Failure("no_data", text, tuple(self.recent)), events)
        elif any(marker in text for marker in _OOM_MARKERS):
            self._fail(Failure("cuda_oom", text, tuple(self.recent)), events)
        elif _ARGPARSE_ERROR.match(text):
            self._fail(Failure("unknown", text, (text,)), events)
        elif line.startswith("  ") and " / " in text:
            self._summary_line(text, events)

    def _summary_line(self, text: str, events: list[LogEvent]) -> None:
        label = text.split(" / ", 1)[0].strip()
        key = _SUMMARY_KEYS.get(label)
        number = _SUMMARY_NUMBER.search(text)
        if key is None or number is None:
            return
        self.state.summary[key] = int(number[1])
        if key == "total_steps":
            summary = self.state.summary
            events.append(RunSummary(summary.get("images_x_repeats"), summary.get("batches_per_epoch"),
                                     summary.get("epochs"), summary.get("grad_accum"), summary["total_steps"]))

    def _exception(self, line: str, name: str, events: list[LogEvent]) -> None:
        short_name = name.rsplit(".", 1)[-1]
        if any(marker in line for marker in _OOM_MARKERS):
            cause = "cuda_oom"
        elif short_name in _IMPORT_ERRORS:
            cause = "import_error"
        else:
            cause = "traceback"
        lines = tuple(self.state.traceback_lines[-_CONTEXT_LINES:])
        self.state.in_traceback = False
        self._fail(Failure(cause, line.strip(), lines), events)

    def _end_traceback(self, events: list[LogEvent]) -> None:
        if self.state.in_traceback:  # the stream ended inside a traceback (killed while printing)
            lines = tuple(self.state.traceback_lines[-_CONTEXT_LINES:])
            self.state.in_traceback = False
            self._fail(Failure("traceback", lines[-1] if lines else "traceback", lines), events)

    def _fail(self, failure: Failure, events: list[LogEvent]) -> None:
        if failure.outranks(self.state.failure):
            self.state.failure = failure
        events.append(failure)


def parse_text(text: str) -> list[LogEvent]:
    """All events of a complete log held in memory (tests, small logs)."""
    parser = LogParser()
    return parser.feed(text) + parser.close()
