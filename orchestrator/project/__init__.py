"""A project folder from a film to the best LoRA: ``init`` writes project.toml, ``run`` runs the stages
whose inputs or options changed (and those after them), ``status`` says where it stands.

>>> from orchestrator.project import init_project, run_project
>>> init_project("luca", films=["luca.mkv"], references="refs", profile="luca.yaml")   # doctest: +SKIP
>>> run_project("luca", accept_automatic=True).did_nothing                             # doctest: +SKIP
"""

from orchestrator.project.init import check_inputs, init_project
from orchestrator.project.run import RunResult, StageOutcome, run_project
from orchestrator.project.schema import PROJECT_FILE, PROJECT_VERSION, Project, load_project
from orchestrator.project.stages import STAGES, Stage
from orchestrator.project.status import next_step, project_status, write_status_page

__all__ = [
    "PROJECT_FILE",
    "PROJECT_VERSION",
    "STAGES",
    "Project",
    "RunResult",
    "Stage",
    "StageOutcome",
    "check_inputs",
    "init_project",
    "load_project",
    "next_step",
    "project_status",
    "run_project",
    "write_status_page",
]
