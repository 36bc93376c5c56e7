"""The quickstart's steps: check the machine, write a toy project (film, references, profile, project.toml),
build its models, then ``run`` it: the same code path as ``lora-pipeline run`` on a person's own film.

Each step takes the shared :class:`QuickstartState` and returns a few facts for ``quickstart_summary.json``;
the run step returns every project stage's own timing and facts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.config.paths import ProjectPaths
from orchestrator.quickstart.state import QuickstartFailed, QuickstartOptions, QuickstartState, Step
from orchestrator.quickstart.toy_project import PRESET_FILE, toy_project_step

__all__ = ["PRESET_FILE", "STEPS", "quickstart_paths"]

def quickstart_paths(options: QuickstartOptions, base: ProjectPaths) -> ProjectPaths:
    """The machine's paths with this run's sd-scripts and trainer Python; the project moves the data and
    output folders under OUT (``orchestrator.project.context.project_paths``)."""
    from orchestrator.project.context import project_paths
    from orchestrator.project.schema import Project

    trainer_python = options.trainer_python or base.trainer_python
    if "/" in trainer_python:  # a path (not a bare command): the trainer runs with cwd = sd-scripts
        trainer_python = str(Path(trainer_python).expanduser().absolute())
    machine = base.with_overrides(
        sd_scripts=Path(options.sd_scripts).expanduser().resolve() if options.sd_scripts else base.sd_scripts,
        trainer_python=trainer_python)
    return project_paths(Project(folder=options.out, settings={}), machine)


def check_step(state: QuickstartState) -> dict[str, Any]:
    """Fail in seconds, not after curation and captions, when training cannot start at all."""
    from orchestrator.kohya.checkout import TRAINING_SCRIPTS, inspect_checkout
    from orchestrator.runner import PreflightFailed
    from orchestrator.runner.preflight import check_tools

    report = check_tools(sd_scripts=state.paths.sd_scripts, trainer_python=state.paths.trainer_python,
                         script_name=TRAINING_SCRIPTS["sd15"])
    for warning in report.warnings:
        print(f"warning: {warning}")
    if not report.ok:
        raise PreflightFailed(report)
    return {"sd_scripts": inspect_checkout(state.paths.sd_scripts).describe(),
            "trainer_python": state.paths.trainer_python}


def models_step(state: QuickstartState) -> dict[str, Any]:
    """Build (or reuse from the cache) every model the toy project names ``random``, before the run times it."""
    from orchestrator.project.context import RunContext

    assert state.project is not None
    models = RunContext(project=state.project, paths=state.paths).models()
    state.models = models
    return {"base_model": models.base_model, "clip": f"{models.clip_model}/{models.clip_weights}",
            "vlm": models.vlm_weights, "random": list(models.random)}


def run_step(state: QuickstartState) -> dict[str, Any]:
    """``lora-pipeline run OUT --accept-automatic``: every project stage, each timed."""
    from orchestrator.project import run_project

    assert state.project is not None
    state.run = run_project(state.out, accept_automatic=True, progress=state.options.progress,
                            tmux_socket=state.options.tmux_socket, machine=state.paths)
    if state.run.waiting:
        raise QuickstartFailed(f"the toy project stopped: {state.run.waiting}")
    return {"stages": [{"name": o.name, "status": o.status, "seconds": round(o.seconds, 2), "facts": o.facts}
                       for o in state.run.outcomes]}


STEPS: tuple[Step, ...] = (
    Step("check", "tmux, sd-scripts and the trainer Python are there", check_step),
    Step("toy project", "draw a short toy film (cuts, a second character, a fade, a frozen stretch), references "
         "and a profile; init the project", toy_project_step),
    Step("models", "build or load the models", models_step),
    Step("run", "lora-pipeline run: extract, crop, curate, review, prepare, caption, train/search, evaluate, "
         "verdict", run_step),
)
