"""status.html: self-contained (thumbnails inlined), one row per stage, the counts, the best run's samples,
the score curve; checked in headless Chromium (marker ``chromium``)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from orchestrator.project import STAGES, init_project, project_status, run_project, write_status_page

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)


def _stage(stage):
    def work(context):
        folder = stage.folder(context)
        folder.mkdir(parents=True, exist_ok=True)
        if stage.name == "review":
            for index in range(3):
                Image.new("RGB", (200, 300), (80 * index, 120, 60)).save(folder / f"crop{index}.png")
            return {"kept": 3}
        if stage.name == "train":
            samples = context.out / "training" / "luca" / "sample"
            samples.mkdir(parents=True, exist_ok=True)
            for index in range(2):
                Image.new("RGB", (64, 64), (200, 40 * index, 90)).save(samples / f"luca_e000001_{index:02d}.png")
            return {"run_dir": str(samples.parent), "epochs": 2}
        if stage.name == "evaluate":
            return {"best_checkpoint": "luca-000002.safetensors", "best_score": 0.61,
                    "scores": {"1": 0.42, "2": 0.61, "3": 0.55}}
        return {"extract": {"films": 1, "shots": 5, "frames": 15}, "crop": {"crops": 14}}.get(stage.name, {})
    return replace(stage, run=work)


@pytest.fixture
def page(tmp_path: Path, inputs) -> Path:
    init_project(tmp_path / "luca", films=[inputs["film"]], references=inputs["references"],
                 profile=inputs["profile"])
    run_project(tmp_path / "luca", stages=tuple(_stage(s) for s in STAGES), progress=False, say=lambda line: None)
    return write_status_page(project_status(tmp_path / "luca"))


def test_the_page_is_self_contained_with_every_stage_the_flow_thumbnails_and_curve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert page.name == "status.html" and page.parent.name == "luca"
    assert text.count("<tr class=\"done\">") == len(STAGES)
    assert "1 films &rarr; 5 shots &rarr; 15 frames &rarr; 14 crops &rarr; 3 kept" in text
    assert text.count('src="data:image/png;base64,') == 5  # 3 kept crops + 2 samples, inlined
    assert "<polyline" in text and "luca-000002.safetensors" in text
    assert "src=\"file:" not in text and "src=\"/" not in text  # nothing outside the page


@pytest.mark.chromium
def test_the_status_page_renders_in_headless_chromium(page: Path, tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("headless Chromium not installed (Debian package chromium)")
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.stdout.count("<tr class=\"done\">") == len(STAGES), dom.stderr[-2000:]
    assert 'id="kept"' in dom.stdout and dom.stdout.count("data:image/png;base64,") == 5
    shot = tmp_path / "status.png"
    subprocess.run([*flags, "--window-size=1000,1400", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    with Image.open(shot) as image:
        low, high = image.convert("L").getextrema()
    assert high - low > 50  # a rendered page, not a blank one
    # The images decoded: a crop thumbnail's colour is on the screen.
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert (pixels == (160, 120, 60)).all(axis=-1).any()
