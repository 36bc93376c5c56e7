"""Run the quickstart's steps in order, timing each, and say where everything is.

``OUT/quickstart_summary.json`` is rewritten after every step (atomically), so an interrupted or
failed quickstart still shows how far it got, how long each stage took and why it stopped.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from orchestrator.common.atomic import atomic_write_json
from orchestrator.common.errors import UserInputError
from orchestrator.quickstart.steps import STEPS, QuickstartOptions, QuickstartState, Step, quickstart_paths

SUMMARY_NAME = "quickstart_summary.json"
DASHBOARD_PORT = 8080
console = Console(highlight=False)


@dataclass
class StageTiming:
    name: str
    seconds: float
    status: str  # ok | failed
    facts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class QuickstartResult:
    out: Path
    stages: list[StageTiming]
    state: QuickstartState

    @property
    def total_seconds(self) -> float:
        return sum(stage.seconds for stage in self.stages)

    @property
    def ok(self) -> bool:
        return len(self.stages) == len(STEPS) and all(s.status == "ok" for s in self.stages)


def dashboard_command(storage_url: str) -> str:
    return f"optuna-dashboard --host 127.0.0.1 --port {DASHBOARD_PORT} {storage_url}"


def tmux_socket_for(out: Path) -> str:
    """One private tmux server per quickstart folder: trial session names repeat from run to run, and a
    private server keeps them out of the user's own sessions."""
    return f"lp-quickstart-{hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:8]}"


def start_fresh(out: Path, tmux_socket: str) -> None:
    """Empty what an earlier quickstart left in ``out`` (never a folder the quickstart did not write)."""
    from orchestrator.runner import tmux

    if out.is_dir() and any(out.iterdir()) and not (out / SUMMARY_NAME).is_file():
        raise UserInputError("folder exists and was not written by the quickstart", path=out,
                             hint="choose another --out (the quickstart empties its own folder on each run)")
    tmux.kill_server(tmux_socket)  # sessions of the previous run in this folder; their runs have ended
    if out.is_dir():
        for child in out.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    out.mkdir(parents=True, exist_ok=True)


def run_quickstart(options: QuickstartOptions, *, steps: tuple[Step, ...] = STEPS) -> QuickstartResult:
    """Run every stage on the toy film under ``options.out``; raise the failing stage's error."""
    from orchestrator.config.paths import load_paths

    options = replace(options, tmux_socket=options.tmux_socket or tmux_socket_for(options.out))
    start_fresh(options.out, options.tmux_socket)
    state = QuickstartState(options=options, paths=quickstart_paths(options, load_paths()))
    result = QuickstartResult(out=options.out, stages=[], state=state)
    for number, step in enumerate(steps, start=1):
        console.rule(f"[bold][{number}/{len(steps)}] {step.name}[/bold]: {step.description}")
        started = time.perf_counter()
        try:
            facts = step.run(state)
        except BaseException as error:
            result.stages.append(StageTiming(step.name, time.perf_counter() - started, "failed",
                                             error=f"{type(error).__name__}: {error}"))
            write_summary(result)
            raise
        result.stages.append(StageTiming(step.name, time.perf_counter() - started, "ok", facts))
        console.print(f"[green]{step.name} done[/green] in {result.stages[-1].seconds:.1f} s")
        if step.name == "models" and state.models is not None and state.models.any_random:
            print_random_banner(state.models.random)
        write_summary(result)
    # Every run has ended and its log is on disk; a failed quickstart keeps its sessions to look at.
    from orchestrator.runner import tmux

    tmux.kill_server(options.tmux_socket)
    return result


def print_random_banner(random: tuple[str, ...]) -> None:
    console.print(Panel(
        f"[bold]RANDOM WEIGHTS[/bold]: {', '.join(random)}.\n"
        "No weights were given and none can be downloaded, so these are random-weight models of the real "
        "architectures, built locally.\n[bold]The sample images will be noise and every score meaningless.[/bold] "
        "The point of this run is to prove that the whole chain works on this machine: tmux, sd-scripts, "
        "sampling, scoring and the search database.\nFor a real run: --base-model, --clip-weights, "
        "--vlm-weights, --detector, --segmenter (and --device cuda).",
        title="quickstart", border_style="bold red"))


def summary_document(result: QuickstartResult) -> dict[str, Any]:
    state = result.state
    search = state.facts("train") if state.project and state.project.get("final", "mode") == "search" else {}
    evaluation, verdict = state.facts("evaluate"), state.facts("verdict")
    return {
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "out": str(result.out),
        "device": state.options.device,
        "complete": result.ok,
        "random_weights": list(state.models.random) if state.models else [],
        "stages": [{"name": s.name, "seconds": round(s.seconds, 2), "status": s.status, "error": s.error,
                    "facts": s.facts} for s in result.stages],
        "total_seconds": round(result.total_seconds, 2),
        "project": str(state.project.file) if state.project else None,
        "best_checkpoint": evaluation.get("best_checkpoint"),
        "best_score": evaluation.get("best_score"),
        "report": evaluation.get("report"),
        "search_analysis": evaluation.get("analysis"),
        "study": {"storage": search.get("storage"), "counts": search.get("counts"),
                  "best_trial": search.get("best_trial")} if search else None,
        "votes_page": verdict.get("votes_page"),
        "apply_command": verdict.get("apply_command"),
        "dashboard_command": dashboard_command(search["storage"]) if search.get("storage") else None,
    }


def write_summary(result: QuickstartResult) -> Path:
    return atomic_write_json(result.out / SUMMARY_NAME, summary_document(result))


def print_timings(result: QuickstartResult) -> None:
    table = Table(title="quickstart wall time per stage")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("share", justify="right")
    total = result.total_seconds or 1.0
    for stage in result.stages:
        style = "" if stage.status == "ok" else "red"
        table.add_row(stage.name, f"{stage.seconds:.1f}", f"{100 * stage.seconds / total:.0f}%", style=style)
        for inner in stage.facts.get("stages", []):  # the project run's own stages, each timed
            table.add_row(f"  {inner['name']}", f"{inner['seconds']:.1f}", f"{100 * inner['seconds'] / total:.0f}%")
    table.add_row("[bold]total[/bold]", f"[bold]{result.total_seconds:.1f}[/bold]", "100%")
    console.print(table)


def print_where(result: QuickstartResult) -> None:
    document = summary_document(result)
    study = document["study"] or {}
    rows = [("project", document["project"]), ("best checkpoint", document["best_checkpoint"]),
            ("best score", document["best_score"])]
    rows += [(label, document[key]) for label, key in (("report", "report"), ("search analysis", "search_analysis"))
             if document[key]]
    if study:
        rows += [("study", study.get("storage")), ("best trial", study.get("best_trial"))]
    if document["dashboard_command"]:
        rows.append(("dashboard", document["dashboard_command"]))
    rows += [("summary", str(result.out / SUMMARY_NAME)), ("status", f"lora-pipeline status {result.out}")]
    if document["votes_page"]:
        rows += [("blind votes", Path(document["votes_page"]).as_uri()), ("apply votes", document["apply_command"])]
    console.rule("[bold green]quickstart finished[/bold green]")
    for label, value in rows:
        console.print(f"[bold]{label + ':':<17}[/bold]{escape(str(value))}", soft_wrap=True)
