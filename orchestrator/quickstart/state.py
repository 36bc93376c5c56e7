"""What the quickstart's steps share: the options a person gave, the state one step leaves for the next,
and the step itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.common.errors import PipelineError
from orchestrator.config.paths import ProjectPaths
from orchestrator.project import Project, RunResult
from orchestrator.project.models import QuickstartModels
from orchestrator.toy import ToyFilm, ToyFilmSpec

#: The toy film: 6 shots of 1.5 s at 12 fps (cuts, a second character, a fade to black, a frozen stretch),
#: 384x288 so that a crop of the hero keeps 256 px (curation's minimum) on its short side. Three frames a
#: shot give 15 frames, 15 crops with the random models: enough for every stage to show its work, few
#: enough that the 2-epoch CPU trials take about 3 minutes.
QUICKSTART_FILM = ToyFilmSpec(width=384, height=288)
#: The toy character's caption profile: what its drawing always shows (orchestrator/toy/character_drawing.py).
TOY_PROFILE: dict[str, object] = {
    "name": "Toy Hero", "film": "lora-pipeline quickstart", "year": 2026, "studio": "Pixar",
    "trigger": "toyhero boy",
    "description": ["round tan face", "curly brown hair", "blue and white striped shirt", "green shorts"],
    "rendering_terms": ["flat colours", "clean outlines"],
    "material_terms": ["smooth shading"],
    "forbidden": ["blond", "red shirt", "square face"],
}


class QuickstartFailed(PipelineError):
    """A step did not produce what the next one needs; the message says which and where to look."""


@dataclass(frozen=True)
class QuickstartOptions:
    out: Path
    device: str = "cpu"
    base_model: str | None = None
    clip_weights: str | None = None
    clip_model: str | None = None
    vlm_weights: str | None = None
    detector: str | None = None  # an OWLv2 folder; None: a tiny random one
    segmenter: str | None = None  # a SAM folder; None: a tiny random one
    masks: bool = True  # crops carry the character's mask (alpha), and training uses masked loss
    sd_scripts: Path | None = None  # default: configs/paths.toml (LORA_PIPELINE_SD_SCRIPTS)
    trainer_python: str | None = None
    trials: int = 3  # 0: one training instead of a search
    film: ToyFilmSpec = field(default_factory=lambda: QUICKSTART_FILM)
    references: int = 3
    model_cache: Path | None = None
    tmux_socket: str | None = None
    progress: bool = True


@dataclass
class QuickstartState:
    options: QuickstartOptions
    paths: ProjectPaths  # the machine's paths (sd-scripts, trainer Python), with this run's overrides
    project: Project | None = None  # the toy project, in OUT
    film: ToyFilm | None = None
    models: QuickstartModels | None = None
    run: RunResult | None = None

    @property
    def out(self) -> Path:
        return self.options.out

    def facts(self, stage: str) -> dict[str, Any]:
        """What a project stage of this run recorded (empty before it ran)."""
        if self.run is None:
            return {}
        return next((o.facts for o in self.run.outcomes if o.name == stage), {})


@dataclass(frozen=True)
class Step:
    name: str
    description: str
    run: Callable[[QuickstartState], dict[str, Any]]
