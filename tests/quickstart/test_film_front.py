"""The quickstart runs a toy project from its film: extract -> crop (with masks) -> curate -> prepare ->
caption -> train (the sd-scripts test double, one training: ``trials=0``), each stage's output read back
the way the next stage reads it. The
stages' wall times are printed (``pytest -s``) and bounded, so the film front cannot quietly eat the
quickstart's 6-minute budget."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from orchestrator.common.tomlfile import read_toml
from orchestrator.project import STAGES
from orchestrator.quickstart import QuickstartOptions, run_quickstart

FAKE_SD_SCRIPTS = Path(__file__).resolve().parents[1] / "fakes" / "fake_sd_scripts"
STEPS = ("check", "toy project", "models", "run")
#: Seconds the film front (toy film + extract + crop) may take on a busy 2-core CPU; it measured ~10 s.
FILM_FRONT_BUDGET = 60.0

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("transformers")
    empty_model = tmp_path_factory.mktemp("model")  # the double never loads it; pre-flight wants it to exist
    options = QuickstartOptions(out=tmp_path_factory.mktemp("qs") / "out", clip_model="tiny-clip",
                                sd_scripts=FAKE_SD_SCRIPTS, trainer_python=sys.executable,
                                base_model=str(empty_model), model_cache=tmp_path_factory.mktemp("models"),
                                trials=0, progress=False)
    return run_quickstart(options)


def _kohya(front) -> Path:
    return front.out / "captions" / "kohya" / "1_toyhero"


def _run_dir(front) -> Path:
    return front.out / "training" / "toyhero"


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_film_front_runs_in_order_and_is_timed(front) -> None:
    assert [stage.name for stage in front.stages] == list(STEPS) and all(s.status == "ok" for s in front.stages)
    seconds = {stage.name: stage.seconds for stage in front.stages}
    project_stages = front.stages[-1].facts["stages"]
    assert [s["name"] for s in project_stages] == [stage.name for stage in STAGES]  # `run`'s own order
    assert all(s["status"] == "done" for s in project_stages)
    seconds.update({s["name"]: s["seconds"] for s in project_stages})
    film_front = seconds["toy project"] + seconds["extract"] + seconds["crop"]
    print("\nquickstart stage seconds (fake trainer): "
          + ", ".join(f"{name} {value:.1f}" for name, value in seconds.items())
          + f"; film front (toy project + extract + crop) {film_front:.1f}")
    assert film_front < FILM_FRONT_BUDGET


def test_extract_finds_the_films_shots_and_drops_its_fade_and_frozen_frames(front) -> None:
    summary = _json(front.out / "frames" / "summary.json")
    assert summary["shots"] == front.state.options.film.shots
    assert {"black", "frozen"} <= set(summary["dropped"])
    assert summary["frames"] == len(list((front.out / "frames").glob("*.png")))


def test_curation_looks_at_the_crops_only_and_the_masks_reach_the_kohya_folder(front) -> None:
    crops = _json(front.out / "crops" / "summary.json")
    curation = _json(front.out / "curation" / "summary.json")
    assert curation["counts"]["frames"] == crops["crops"] > 0  # not the crops' manifest and summary files
    assert sorted(curation["ignored"]["files"]) == ["manifest.jsonl", "summary.json"]
    images = sorted(_kohya(front).glob("*.png"))
    assert len(images) == curation["counts"]["after_identity"]
    assert crops["masks"] == crops["crops"]
    for image in images:
        with Image.open(image) as opened:
            assert opened.mode == "RGBA", image  # the crop's mask, as sd-scripts' alpha_mask reads it
        assert "toyhero boy" in image.with_suffix(".txt").read_text(encoding="utf-8")


def test_training_ran_with_masked_loss_on_the_crops(front) -> None:
    run_dir = _run_dir(front)
    dataset = read_toml(run_dir / "config" / "dataset.toml")
    assert dataset["datasets"][0]["subsets"][0]["alpha_mask"] is True
    training = read_toml(run_dir / "config" / "training.toml")
    assert {k: v for table in training.values() for k, v in table.items()}["masked_loss"] is True
    record = _json(run_dir / "run.json")
    assert record["status"] == "succeeded", record.get("failure")
    assert record["summary"]["images_x_repeats"] == len(list(_kohya(front).glob("*.png")))
