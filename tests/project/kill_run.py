"""A project run whose stages before training are fakes that leave a captioned kohya folder, and whose
training is real (the sd-scripts test double in tmux): run as a script so a test can kill it with -9.

    python -m tests.project.kill_run PROJECT_DIR SD_SCRIPTS
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from PIL import Image

from orchestrator.config.paths import load_paths
from orchestrator.project import STAGES, run_project

FAKED = {"extract", "crop", "curate", "review", "prepare", "caption", "evaluate", "verdict"}


def _fake(stage):
    def work(context):
        folder = stage.folder(context)
        folder.mkdir(parents=True, exist_ok=True)
        if stage.name == "caption":  # what training reads: images with their captions
            subset = context.paths.dataset_dir / f"1_{context.name}"
            subset.mkdir(parents=True, exist_ok=True)
            for index in range(12):  # 3 steps an epoch at batch 4
                Image.new("RGB", (64, 64), (60 * index, 90, 120)).save(subset / f"crop{index}.png")
                (subset / f"crop{index}.txt").write_text("luca, standing", encoding="utf-8")
        return {}
    return replace(stage, run=work)


def main(project: str, sd_scripts: str) -> int:
    table = tuple(_fake(stage) if stage.name in FAKED else stage for stage in STAGES)
    machine = load_paths().with_overrides(sd_scripts=Path(sd_scripts), trainer_python=sys.executable)
    result = run_project(project, stages=table, progress=False, machine=machine)
    return 0 if not result.waiting else 3


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
