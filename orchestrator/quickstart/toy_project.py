"""The quickstart's toy project: a toy film, the hero's reference views and its profile, and the
project.toml that names them (the same ``init`` a person runs on a real film)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.quickstart.state import TOY_PROFILE, QuickstartOptions, QuickstartState

#: Frames kept per shot (extract's default).
PER_SHOT = 3
#: The crop's short side: curation's minimum frame size (configs/curation/default.toml, quality.min_side).
CROP_MIN_SIDE = 256
TOY_NAME = "toyhero"
_PACKAGE = Path(__file__).resolve().parent
PRESET_FILE = _PACKAGE / "preset.toml"
SEARCH_SPACE_FILE = _PACKAGE / "search_space.toml"
#: The sampler's seed. Everything else is seeded too, so a quickstart is reproducible.
SEARCH_SEED = 1

#: What a GPU changes so that the same command is a real (short) training: full resolution, fp16, more
#: repeats and epochs. Keys are kohya arguments or ``dataset.<key>``, as for ``--set``.
CUDA_OVERRIDES: dict[str, object] = {
    "dataset.resolution": 512, "dataset.batch_size": 2, "mixed_precision": "fp16", "save_precision": "fp16",
    "network_dim": 16, "network_alpha": 8.0, "max_train_epochs": 4, "gradient_checkpointing": True,
}
REPEATS = {"cpu": 1, "cuda": 10}
#: Each toy trial trains to its end. On the 2-core CPU a toy epoch takes ~15 s and starting sd-scripts
#: ~36 s (CI, 2026-12-07: trial start 05:10:16, first epoch 05:10:52, epochs of 16 s and 15 s), so pausing a
#: run to resume it later costs more than the epoch it could save; real epochs are minutes to hours.
TOY_SCHEDULER = "none"


def toy_settings(options: QuickstartOptions) -> dict[str, dict[str, Any]]:
    """The toy project's settings that differ from a project's defaults: models (random where not given),
    the CPU-sized preset, and a short seeded search (or one training with ``trials=0``)."""
    from orchestrator.project.models import default_model_cache
    from orchestrator.project.schema import RANDOM

    overrides = dict(CUDA_OVERRIDES) if options.device.startswith("cuda") else {}
    final: dict[str, Any] = {"mode": "search" if options.trials else "train", "space": str(SEARCH_SPACE_FILE),
                             "trials": max(1, options.trials), "seed": SEARCH_SEED, "scheduler": TOY_SCHEDULER}
    return {
        "models": {"base_model": options.base_model or RANDOM, "clip_model": options.clip_model or "",
                   "clip_weights": options.clip_weights or RANDOM, "vlm_weights": options.vlm_weights or RANDOM,
                   "model_cache": str(options.model_cache or default_model_cache())},
        "dataset": {"repeats": REPEATS.get(options.device, 1)},
        "train": {"preset": str(PRESET_FILE), "set": overrides},
        "final": final,
    }


def toy_project_step(state: QuickstartState) -> dict[str, Any]:
    import yaml

    from orchestrator.common.atomic import atomic_write_text
    from orchestrator.project import init_project
    from orchestrator.project.schema import RANDOM
    from orchestrator.toy import generate_toy_film, generate_toy_references

    options = state.options
    state.film = generate_toy_film(state.out / "toy", options.film)
    references = generate_toy_references(state.out / "toy" / "references", count=options.references,
                                         seed=options.film.seed)
    profile = atomic_write_text(state.out / "toy" / "profile.yaml", yaml.safe_dump(TOY_PROFILE, sort_keys=False))
    settings = toy_settings(options)
    settings["crop"] = {"masks": options.masks, "min_side": CROP_MIN_SIDE}
    settings["extract"] = {"per_shot": PER_SHOT}
    settings["project"] = {"device": options.device, "name": TOY_NAME}
    settings["models"]["detector"] = options.detector or RANDOM
    settings["models"]["segmenter"] = options.segmenter or RANDOM
    state.project = init_project(state.out, films=[state.film.video], references=references, profile=profile,
                                 settings=settings)
    spec = options.film
    return {"project": str(state.project.file), "video": str(state.film.video), "shots": spec.shots * spec.repeat,
            "seconds": round(spec.shots * spec.repeat * spec.frames_per_shot / spec.fps, 2),
            "size": f"{spec.width}x{spec.height}", "references": options.references}
