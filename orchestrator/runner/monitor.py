"""One screen for a person watching a run: training progress and the machine.

The training part is read from the run's log (through the same grammar and record as ``follow``), so
the screen is live even when nobody is following the run; the status comes from ``run.json``.
``snapshot_text`` is the pure part (``monitor --once`` prints it for scripts).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.runner.files import RunFiles
from orchestrator.runner.log_tail import LogTail
from orchestrator.runner.outcome import failure_advice
from orchestrator.runner.record import RunRecord, load_run_record

TREND_WINDOW = 20
_BAR_WIDTH = 30


@dataclass(frozen=True)
class GpuStats:
    index: int
    name: str
    utilisation: int | None
    memory_used_gb: float
    memory_total_gb: float
    temperature_c: int | None


@dataclass(frozen=True)
class MachineStats:
    gpus: list[GpuStats] = field(default_factory=list)
    gpu_note: str | None = None
    cpu_percent: float | None = None
    ram_used_gb: float | None = None
    ram_total_gb: float | None = None


def read_machine() -> MachineStats:
    """GPU utilisation, VRAM and temperature (pynvml), CPU and RAM (psutil); never raises."""
    import psutil

    from orchestrator.common.gpu import query_gpus

    memory = psutil.virtual_memory()
    cpu = psutil.cpu_percent(interval=None)
    found = query_gpus()
    gpus = [GpuStats(g.index, g.name, g.utilization_percent, (g.total_mib - g.free_mib) / 1024,
                     g.total_mib / 1024, g.temperature_c) for g in found.gpus]
    note = None if found.available else f"no GPU information ({found.reason})"
    return MachineStats(gpus, note, cpu, memory.used / 2**30, memory.total / 2**30)


def loss_trend(losses: list[dict], window: int = TREND_WINDOW) -> str:
    """``falling``/``rising``/``flat``: the mean of the last ``window`` steps against the window before."""
    values = [entry["avr_loss"] for entry in losses if entry.get("avr_loss") is not None]
    if len(values) < 2 * window:
        window = len(values) // 2
    if window < 1:
        return "n/a"
    recent, before = statistics.fmean(values[-window:]), statistics.fmean(values[-2 * window: -window])
    if abs(recent - before) <= 0.01 * abs(before):
        return "flat →"
    return "falling ↓" if recent < before else "rising ↑"


def eta_seconds(record: RunRecord) -> float | None:
    last = record.last_loss
    total = record.summary.get("total_steps")
    if not last or not total or not last.get("s_per_it"):
        return None
    return max(0, total - last["step"]) * last["s_per_it"]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}m{rest % 60:02d}s"


def snapshot_text(record: RunRecord, machine: MachineStats | None = None, *, ended_unrecorded: bool = False) -> str:
    """The monitor screen as plain text."""
    lines = [f"{record.output_name}  [{record.status}]  tmux session {record.tmux_session or '-'}"
             + (f"  (tmux attach -t {record.tmux_session})" if record.is_active and record.tmux_session else "")]
    if ended_unrecorded:
        lines.append("the trainer has ended; run `lora-pipeline watch RUN_DIR` to complete run.json")
    total = record.summary.get("total_steps")
    last = record.last_loss
    step = last["step"] if last else 0
    epochs = record.summary.get("epochs")
    if total:
        filled = int(_BAR_WIDTH * min(step, total) / total)
        lines.append(f"steps    {'█' * filled}{'░' * (_BAR_WIDTH - filled)}  {step}/{total}  "
                     f"{100 * step / total:5.1f}%   epoch {record.current_epoch}/{epochs or '?'}")
    else:
        lines.append("steps    waiting for sd-scripts to start training")
    if last:
        loss = last["avr_loss"] if last.get("avr_loss") is not None else last.get("non_finite", "?")
        s_per_it = f"{last['s_per_it']:.2f}" if last.get("s_per_it") else "?"
        lines.append(f"loss     {loss}  ({loss_trend(record.losses)})   s/it {s_per_it}   "
                     f"ETA {_duration(eta_seconds(record))}")
    durations = [f"{e['epoch']}: {_duration(e['wall_seconds'])}" for e in record.epochs
                 if e.get("wall_seconds") is not None]
    if durations:
        lines.append("epochs   " + "  ".join(durations[-8:]))
    if record.validation_losses:
        lowest = min(record.validation_losses, key=lambda v: v["loss"])
        lines.append("val loss " + "  ".join(f"{v['epoch']}: {v['loss']:.4g}" for v in record.validation_losses[-8:])
                     + f"   (lowest at epoch {lowest['epoch']})")
    if record.checkpoints:
        epoch = max(record.checkpoints, key=int)
        lines.append(f"ckpt     epoch {epoch} → {record.checkpoints[epoch]}")
    if record.samples:
        epoch = max(record.samples, key=int)
        names = [Path(p).name for p in record.samples[epoch]]
        lines.append(f"samples  epoch {epoch}: {len(names)} image(s) " + " ".join(names[:3]))
    if record.failure:
        lines.append(f"FAILED   {record.failure['cause']}: {record.failure['message']}")
        if advice := failure_advice(record.failure):
            lines.append(f"advice   {advice}")
    if machine is not None:
        for gpu in machine.gpus:
            temperature = f"  {gpu.temperature_c}°C" if gpu.temperature_c is not None else ""
            utilisation = "?" if gpu.utilisation is None else gpu.utilisation
            lines.append(f"gpu {gpu.index}    {gpu.name}  util {utilisation}%  VRAM "
                         f"{gpu.memory_used_gb:.1f}/{gpu.memory_total_gb:.1f} GB{temperature}")
        if machine.gpu_note:
            lines.append(f"gpu      {machine.gpu_note}")
        if machine.cpu_percent is not None:
            lines.append(f"cpu      {machine.cpu_percent:.0f}%   RAM {machine.ram_used_gb:.1f}/"
                         f"{machine.ram_total_gb:.1f} GB")
    lines.append(f"log      {record.log_path or '-'}")
    return "\n".join(lines)


class RunMonitor:
    """Reads a run's log incrementally; ``snapshot()`` is the current screen."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.record = load_run_record(self.run_dir)
        self._tail = LogTail(self.record)

    def snapshot(self, *, machine: bool = True) -> str:
        on_disk = load_run_record(self.run_dir)
        if on_disk.log_path != self.record.log_path:  # relaunched: start over on the new log
            self.record, self._tail = on_disk, LogTail(on_disk)
        self._tail.poll()
        self.record.status, self.record.failure = on_disk.status, on_disk.failure
        files = RunFiles(self.run_dir)
        ended = self.record.is_active and files.read(files.exit) is not None
        return snapshot_text(self.record, read_machine() if machine else None, ended_unrecorded=ended)

    def live(self, interval: float = 2.0) -> None:
        """Redraw until the run has ended (or Ctrl-C)."""
        from rich.console import Console
        from rich.live import Live
        from rich.text import Text

        console = Console()
        with Live(Text(self.snapshot()), console=console, refresh_per_second=4, screen=False) as live:
            while True:
                time.sleep(interval)
                live.update(Text(self.snapshot()))
                if not self.record.is_active:
                    break


def find_run_by_session(output_root: Path, session: str) -> Path | None:
    """The run folder under ``output_root`` whose run.json names tmux session ``session`` (newest first)."""
    candidates = []
    for record_file in Path(output_root).glob("*/run.json"):
        try:
            record = load_run_record(record_file.parent)
        except Exception:  # noqa: BLE001 - a broken record is not this session's
            continue
        if record.tmux_session == session:
            candidates.append((record.started_at or "", record_file.parent))
    return max(candidates)[1] if candidates else None
