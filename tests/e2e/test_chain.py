"""The whole chain, end to end, on a tiny toy character: the quickstart, i.e. `lora-pipeline run` on the toy
project (a search of 3 trials with the test double, 2 with the real trainer).

It runs once with the sd-scripts test double (CI) and once with the real sd-scripts on CPU when a
checkout and the trainer Python are there (marker ``sd_scripts``; about 5 minutes and 7 GB of RAM).
Each test reads what one stage left on disk, the way the next stage or a person would.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from orchestrator.common.tomlfile import read_toml
from orchestrator.quickstart import QuickstartOptions, run_quickstart
from orchestrator.toy import ToyFilmSpec

FAKE_SD_SCRIPTS = Path(__file__).resolve().parents[1] / "fakes" / "fake_sd_scripts"
# Four shots of the plan (hero, hero with the stranger, hero fading to black, the stranger alone): 12 frames.
FILM = ToyFilmSpec(shots=4, width=384, height=288, seed=5)
# The real trainer on CPU takes minutes a trial (about 7 on a loaded 2-core machine): two trials still make
# a search (TPE, the study, the best trial's evaluation) and keep the real chain well inside its timeout.
TRIALS = {"fake": 3, "real": 2}
CHROMIUM = "/usr/bin/chromium"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


@pytest.fixture(scope="module", params=["fake", pytest.param("real", marks=pytest.mark.sd_scripts)])
def chain(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("open_clip")
    pytest.importorskip("transformers")
    if request.param == "fake":
        empty_model = tmp_path_factory.mktemp("model")  # the double never loads it; pre-flight wants it to exist
        options = dict(sd_scripts=FAKE_SD_SCRIPTS, trainer_python=sys.executable, base_model=str(empty_model),
                       model_cache=tmp_path_factory.mktemp("models"))
    else:
        options = dict(sd_scripts=request.getfixturevalue("sd_scripts_dir"),
                       trainer_python=request.getfixturevalue("trainer_python"),
                       base_model=str(request.getfixturevalue("random_sd15_model")),
                       model_cache=request.getfixturevalue("test_model_cache"))
        request.getfixturevalue("clip_tokenizer_cache")
    out = tmp_path_factory.mktemp(f"chain-{request.param}") / "quick start"  # a space on purpose
    result = run_quickstart(QuickstartOptions(out=out, clip_model="tiny-clip", film=FILM, references=2,
                                              trials=TRIALS[request.param], progress=False, **options))
    return result


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_every_stage_ran_and_the_summary_says_so(chain) -> None:
    summary = _json(chain.out / "quickstart_summary.json")
    assert summary["complete"] is True
    assert [s["name"] for s in summary["stages"]] == ["check", "toy project", "models", "run"]
    run = summary["stages"][-1]["facts"]["stages"]
    assert [s["name"] for s in run] == ["extract", "crop", "curate", "review", "prepare", "caption", "train",
                                        "evaluate", "verdict"]
    assert all(s["status"] == "done" for s in run)
    assert all(s["status"] == "ok" and s["seconds"] >= 0 for s in summary["stages"])
    assert summary["total_seconds"] == pytest.approx(sum(s["seconds"] for s in summary["stages"]), abs=0.1)
    assert "CLIP tiny-clip" in summary["random_weights"]
    assert summary["dashboard_command"].startswith("optuna-dashboard --host 127.0.0.1 ")


def test_the_film_becomes_frames_then_crops_then_a_curated_selection(chain) -> None:
    film = _json(chain.out / "toy" / "film.json")
    extract = _json(chain.out / "frames" / "summary.json")
    assert extract["shots"] == len(film["shots"]) == FILM.shots
    assert {"black", "fade"} <= set(extract["dropped"])  # the third shot fades to black
    crops = _json(chain.out / "crops" / "summary.json")
    assert crops["frames"] == extract["frames"] and crops["crops"] > 0
    counts = _json(chain.out / "curation" / "summary.json")["counts"]
    assert counts["frames"] == crops["crops"]  # the crops, not the manifest files beside them
    selected = sorted(p.name for p in (chain.out / "curation" / "selected").iterdir())
    assert len(selected) == counts["after_identity"]


def _kohya(chain) -> Path:
    return chain.out / "captions" / "kohya" / "1_toyhero"


def _first_trial_run(chain) -> Path:
    return chain.out / "search" / "trials" / "trial_0000" / "run"


def test_every_training_image_has_its_caption(chain) -> None:
    folder = _kohya(chain)
    images = sorted(p for p in folder.iterdir() if p.suffix == ".png")
    assert len(images) == _json(chain.out / "curation" / "summary.json")["counts"]["after_identity"]
    for image in images:
        caption = image.with_suffix(".txt").read_text(encoding="utf-8").strip()
        assert caption.startswith("a 3d animated character") and "toyhero boy" in caption, image


def test_the_training_run_reached_succeeded_with_every_epoch(chain) -> None:
    record = _json(_first_trial_run(chain) / "run.json")
    assert record["status"] == "succeeded", record.get("failure")
    images = len(list(_kohya(chain).glob("*.png")))
    batch_size = read_toml(_first_trial_run(chain) / "config" / "dataset.toml")["general"]["batch_size"]
    assert record["summary"]["images_x_repeats"] == images
    assert record["summary"]["total_steps"] == math.ceil(images / batch_size) * 2
    assert sorted(record["checkpoints"]) == ["1", "2"]
    assert all(Path(p).is_file() for p in record["checkpoints"].values())
    # Epoch 0: the base model's samples before training (sample_at_first), the calibration's floor.
    assert sorted(record["samples"]) == ["0", "1", "2"] and all(len(v) == 3 for v in record["samples"].values())


def test_scores_and_best_agree(chain) -> None:
    evaluation = _first_trial_run(chain) / "evaluation"
    scores, best = _json(evaluation / "scores.json"), _json(evaluation / "best.json")
    totals = {int(epoch): data["total"] for epoch, data in scores["epochs"].items()}
    assert set(totals) == {1, 2}
    # The choice rule (evaluate/_choice.py): the leader is the highest total among the epochs no gate
    # excluded; the chosen epoch is the earliest whose interval reaches the leader's, so on random
    # weights it need not be the highest total.
    pool = [epoch for epoch in totals if str(epoch) not in best["excluded"]]
    assert best["leader"] == max(pool, key=lambda epoch: (totals[epoch], -epoch))
    assert best["epoch"] == min(best["within_noise"]) and best["leader"] in best["within_noise"]
    assert set(best["within_noise"]) <= set(pool)
    assert best["total"] == pytest.approx(totals[best["epoch"]])
    assert Path(best["checkpoint"]).is_file()
    summary = _json(chain.out / "quickstart_summary.json")
    assert summary["best_checkpoint"] == _json(chain.out / "search" / "analysis" / "analysis.json")["best"]["checkpoint"]


def test_trial_results_list_every_trial_with_its_state(chain) -> None:
    results = _json(chain.out / "search" / "trial_results.json")
    trials = read_toml(chain.out / "project.toml")["final"]["trials"]
    assert trials in TRIALS.values()
    assert results["counted_trials"] == trials
    assert [t["number"] for t in results["trials"]] == list(range(len(results["trials"])))
    counted = [t for t in results["trials"] if t["state"] in ("complete", "pruned", "fail")]
    assert len(counted) == trials
    for trial in results["trials"]:
        assert trial["state"] in ("complete", "pruned", "fail", "running", "waiting")
        if trial["state"] == "complete":
            assert trial["value"] == pytest.approx(trial["epoch_scores"][str(trial["best_epoch"])])
            assert Path(trial["checkpoint"]).is_file()
    assert (chain.out / "search" / "optuna_study.db").is_file()


@pytest.mark.chromium
def test_the_report_opens_in_headless_chromium_with_the_sample_grid(chain, tmp_path: Path) -> None:
    if not Path(CHROMIUM).is_file() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"headless Chromium not installed at {CHROMIUM} (Debian package chromium)")
    report = Path(_json(chain.out / "quickstart_summary.json")["report"])
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run([*flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120)
    assert 'id="sample-grid"' in dom.stdout, dom.stderr[-2000:]
    assert 'data-grid-ready="6"' in dom.stdout  # 3 prompts x 2 epochs, built by the page's script
    assert dom.stdout.count('src="data:image/') >= 6
    shot = tmp_path / "report.png"
    subprocess.run([*flags, "--window-size=1280,2400", f"--screenshot={shot}", report.as_uri()],
                   capture_output=True, timeout=120, check=True)
    pixels = Image.open(shot).convert("L")
    assert pixels.getextrema()[1] - pixels.getextrema()[0] > 50  # a rendered page, not a blank one
