"""How big the training set of a base preset is: what a prior study's epochs are scaled by.

The guide carries hyperparameters from one character to the next "with epochs and repeats adjusted to the
dataset size". The size that matters is what one epoch shows the trainer: images x repeats, summed over the
dataset's subsets as sd-scripts reads them (``{repeats}_{name}`` folders set their own repeats). A new
search records it in its study (``DATASET_ATTR``) so that a later search can start from this one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def dataset_size(rendered_dataset: Mapping[str, Any]) -> dict[str, int] | None:
    """``{"images", "images_per_epoch"}`` of a rendered dataset TOML document (``RenderedRun.dataset``);
    None when no subset folder holds an image (a simulated search has no data)."""
    from orchestrator.vision import list_image_files

    images = per_epoch = 0
    for dataset in rendered_dataset.get("datasets", []):
        for subset in dataset.get("subsets", []):
            folder = Path(str(subset.get("image_dir", "")))
            count = len(list_image_files(folder)) if folder.is_dir() else 0
            images += count
            per_epoch += count * int(subset.get("num_repeats", 1))
    return {"images": images, "images_per_epoch": per_epoch} if images else None


def base_preset_size(base: Any, paths: Any, output: Path) -> dict[str, int] | None:
    """The size of the training set the base preset ``base`` (a loaded preset) trains on."""
    from orchestrator.kohya.render import render_run

    rendered = render_run(base, paths=paths, run_dir=output / "base_preset_check", write=False)
    return dataset_size(rendered.dataset)
