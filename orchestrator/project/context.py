"""What a project's stages share during one ``run``: the project, its machine paths, and the models,
loaded once and only when a stage that needs them runs (a ``run`` with nothing to do loads none)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.common.errors import PipelineError, UserInputError
from orchestrator.config.paths import ProjectPaths
from orchestrator.project.models import QuickstartModels
from orchestrator.project.schema import DEFAULT_PRESETS, DEFAULT_SPACES, RANDOM, Project

# Each stage's folder under the project folder: deleting one redoes that stage and those after it.
FRAMES, CROPS, CURATION, DATASET, CAPTIONS, TRAINING, SEARCH = (
    "frames", "crops", "curation", "dataset", "captions", "training", "search")
SELECTED = "selected"  # curation's own name for the chosen frames (dataset/apply.py)
DECISIONS = "decisions.json"
LOGS = "logs"


class StageFailed(PipelineError):
    """A stage did not produce what the next one needs; the message says which and where to look."""


class NeedsPerson(PipelineError):
    """The run stops here until a person decides; the message is the exact next step."""

    exit_code = 3


@dataclass
class RunContext:
    project: Project
    paths: ProjectPaths
    accept_automatic: bool = False
    progress: bool = True
    tmux_socket: str = ""
    continuing: bool = False  # the stage about to run was interrupted with the same fingerprint: continue it
    _models: QuickstartModels | None = field(default=None, repr=False)
    _encoder: Any = field(default=None, repr=False)

    @property
    def out(self) -> Path:
        return self.project.folder

    @property
    def device(self) -> str:
        return str(self.project.get("project", "device"))

    @property
    def name(self) -> str:
        return str(self.project.get("project", "name"))

    def models(self) -> QuickstartModels:
        """The project's models; each one set to ``random`` is built locally (cached between runs)."""
        if self._models is None:
            from orchestrator.project.models import default_model_cache, resolve_models

            settings = self.project.settings["models"]
            family = self.project.get("project", "family")
            base = settings["base_model"] or getattr(self.paths, f"base_model_{family}", "")
            if base == RANDOM and family != "sd15":
                raise UserInputError(f"a random base model exists for sd15 only (family is {family})",
                                     path=self.project.file, key="models.base_model")
            cache = Path(settings["model_cache"]).expanduser() if settings["model_cache"] else default_model_cache()
            self._models = resolve_models(
                cache_dir=cache, base_model=None if base == RANDOM else base,
                clip_weights=settings["clip_weights"], clip_model=settings["clip_model"] or None,
                vlm_weights=None if settings["vlm_weights"] == RANDOM else settings["vlm_weights"],
                detector=settings["detector"], segmenter=settings["segmenter"])
            self.paths = self.paths.with_overrides(**{f"base_model_{family}": self._models.base_model},
                                                   tokenizer_cache_dir=str(self._models.tokenizer_cache_dir))
        return self._models

    def encoder(self) -> Any:
        if self._encoder is None:
            from orchestrator.vision import load_clip

            models = self.models()
            self._encoder = load_clip(models.clip_model, models.clip_weights, device=self.device)
        return self._encoder


def project_paths(project: Project, base: ProjectPaths) -> ProjectPaths:
    """The machine's paths with every data and output location moved under the project folder: the logs
    and sample prompts into the last step's own folder (``training/`` or ``search/``)."""
    folder = project.folder
    last = folder / (SEARCH if project.settings.get("final", {}).get("mode") == "search" else TRAINING)
    return base.with_overrides(dataset_dir=folder / CAPTIONS / "kohya", output_root=folder / TRAINING,
                               logs_dir=last / LOGS, prompts_file=last / "prompts.txt")


def tmux_socket_for(folder: Path) -> str:
    """One private tmux server per project folder, so trial session names never meet the user's own."""
    return f"lp-project-{hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:8]}"


def profile(context: RunContext) -> Any:
    """The character profile, read and checked (a bad key is refused naming the file)."""
    from orchestrator.captions.profile import load_profile

    return load_profile(context.project.path("inputs", "profile"))


def references(context: RunContext) -> Path:
    return context.project.path("inputs", "references")


def run_dir(context: RunContext) -> Path:
    """The one training's run folder (train mode)."""
    return context.out / TRAINING / context.name


def preset_path(context: RunContext) -> Path:
    """``train.preset``: a file (relative to the project folder) or a preset name; "" = the family's default."""
    from orchestrator.config.presets import presets_dir

    return _named_config(context, "train", "preset", presets_dir(), DEFAULT_PRESETS)


def space_path(context: RunContext) -> Path:
    """``final.space``: a file (relative to the project folder) or a space name in configs/search; "" = the
    family's search space."""
    from orchestrator.config.paths import project_root

    return _named_config(context, "final", "space", project_root() / "configs" / "search", DEFAULT_SPACES)


def _named_config(context: RunContext, section: str, name: str, folder: Path, defaults: dict[str, str]) -> Path:
    value = str(context.project.get(section, name))
    if "/" in value or value.endswith(".toml"):
        return context.project.path(section, name)
    family = str(context.project.get("project", "family"))
    chosen = value or defaults.get(family)
    if not chosen:
        raise UserInputError(f"the {family} family has no default {name}: name one", path=context.project.file,
                             key=f"{section}.{name}")
    path = folder / f"{chosen}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.toml"))) or "none"
        raise UserInputError(f"no {name} named {chosen!r} (known: {known})", path=context.project.file,
                             key=f"{section}.{name}")
    return path


def preset_document(context: RunContext) -> dict[str, Any]:
    from orchestrator.common.tomlfile import read_toml

    return read_toml(preset_path(context), what="preset")
