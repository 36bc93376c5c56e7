"""report.html, compare, test-checkpoints argv and the CLI exit codes, end to end on a fake run."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from orchestrator.cli import main
from orchestrator.evaluate import evaluate_run, write_report
from orchestrator.evaluate._checkpoint_tests import plan_checkpoint_tests
from orchestrator.evaluate._compare import comparison_rows, load_evaluated_run, write_comparison_page
from orchestrator.kohya.outputs import parse_prompt_line, read_prompt_file
from tests.evaluate.fake_run import make_run

PROJECT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or (Path("/usr/bin/chromium").is_file() and "/usr/bin/chromium") or None


def _evaluated(tmp_path: Path, encoder, **kwargs):
    run = make_run(tmp_path, **kwargs)
    result = evaluate_run(run.run_dir, references=run.references, encoder=encoder, cache_dir=tmp_path / "c")
    return run, result


def test_shipped_validation_prompts_are_30_seeded_512px_prompts():
    prompts = read_prompt_file(PROJECT / "prompts/luca/luca_validation_prompts.txt")
    assert len(prompts) == 30
    assert len({p.seed for p in prompts}) == 30
    assert all(p.negative and p.width == 512 and p.height == 512 for p in prompts)
    assert all(" --" not in p.text for p in prompts)


def test_report_is_self_contained_and_holds_every_sample(tmp_path: Path, tiny_encoder):
    run, result = _evaluated(tmp_path, tiny_encoder)
    html = write_report(run.run_dir).read_text()
    grid = json.loads(html.split('id="grid-data">')[1].split("</script>")[0])
    assert grid["epochs"] == [2, 4] and [p["index"] for p in grid["prompts"]] == [0, 1, 2]
    assert all(cell["src"].startswith("data:image/jpeg;base64,") for cell in grid["cells"].values())
    assert len(grid["cells"]) == 6 and grid["best"] == result.best.epoch
    assert "http://" not in html and "https://" not in html and "<link" not in html
    assert "0.803" in html and "0.885" in html  # literature reference points
    assert "clamp((x - 0.15) / (0.35 - 0.15), 0, 1)" in html  # the adherence rule, printed


def test_sample_details_are_plain_text_for_the_detail_panel(tmp_path: Path, tiny_encoder):
    """The panel shows details with textContent: HTML entities there would be shown literally."""
    from PIL import Image

    from orchestrator.vision.synthetic import synthetic_scene

    def black_first(epoch, index):
        return Image.new("RGB", (64, 64)) if index == 0 else synthetic_scene(1000 * epoch + index, (64, 64))

    run, _ = _evaluated(tmp_path, tiny_encoder, images=black_first)
    html = write_report(run.run_dir).read_text()
    grid = json.loads(html.split('id="grid-data">')[1].split("</script>")[0])
    details = [cell["details"] for cell in grid["cells"].values()]
    assert all(d.startswith("name: ") for d in details)
    flagged = [line for d in details for line in d.splitlines() if line.startswith("flags: ")]
    assert flagged and all("'" not in line and "[" not in line for line in flagged)
    assert not any("&#x27;" in d or "&amp;" in d for d in details)


@pytest.mark.chromium
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_report_grid_renders_in_headless_chromium(tmp_path: Path, tiny_encoder):
    run, _ = _evaluated(tmp_path, tiny_encoder)
    report = write_report(run.run_dir)
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*common, "--dump-dom", report.as_uri()], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    # The grid is built by the page's own script: these only exist if the JavaScript ran.
    assert 'id="sample-grid"' in dom and 'data-grid-ready="6"' in dom
    assert dom.count('<img src="data:image/jpeg;base64,') >= 6
    assert 'class="selected' in dom or "selected" in dom
    shot = tmp_path / "shot.png"
    subprocess.run([*common, "--window-size=1000,1400", f"--screenshot={shot}", report.as_uri()],
                   capture_output=True, timeout=120, check=True)
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    # The grid section sits below the best-epoch box and the warnings; its thumbnails are colourful
    # scenes, while the page around them is white/grey: many saturated pixels mean the images drew.
    saturation = pixels.max(axis=2) - pixels.min(axis=2)
    assert pixels.std() > 10
    assert (saturation > 60).mean() > 0.03


def test_compare_puts_runs_side_by_side(tmp_path: Path, tiny_encoder):
    run_a, result_a = _evaluated(tmp_path / "a", tiny_encoder)
    run_b, result_b = _evaluated(tmp_path / "b", tiny_encoder, epochs=(2, 4, 6))
    runs = [load_evaluated_run(run_a.run_dir), load_evaluated_run(run_b.run_dir / "evaluation")]
    rows = dict(comparison_rows(runs))
    assert rows["best epoch"] == [str(result_a.best.epoch), str(result_b.best.epoch)]
    assert rows["model family"] == ["sd15", "sd15"]
    page = write_comparison_page(runs, tmp_path / "cmp.html").read_text()
    assert page.count("data:image/jpeg;base64,") == 6
    assert main(["compare", str(run_a.run_dir), str(run_b.run_dir), "--output", str(tmp_path / "c2.html")]) == 0
    assert (tmp_path / "c2.html").is_file()


def test_test_checkpoints_builds_gen_img_argv_per_checkpoint_and_seed(tmp_path: Path):
    run = make_run(tmp_path, epochs=(2, 4))
    jobs = plan_checkpoint_tests(run.run_dir, base_model="/models/sd15.safetensors", trainer_python="py",
                                 sd_scripts=Path("/sd"), seeds=[7, 8])
    assert [(j.epoch, j.seed) for j in jobs] == [(2, 7), (4, 7), (2, 8), (4, 8)]
    argv = jobs[0].command.argv
    assert argv[:2] == ["py", "/sd/gen_img.py"]
    flags = dict(zip(argv[2::1], argv[3::1], strict=False))
    assert flags["--network_module"] == "networks.lora"
    assert flags["--network_weights"].endswith("luca-000002.safetensors")
    assert flags["--ckpt"] == "/models/sd15.safetensors"
    assert [parse_prompt_line(line, i).seed for i, line in enumerate(jobs[0].prompts_text.splitlines())] == [7, 8, 9]
    sdxl = plan_checkpoint_tests(run.run_dir, base_model="m", trainer_python="py", sd_scripts=Path("/sd"),
                                 family="sdxl", epochs=[4])
    assert sdxl[0].command.argv[1] == "/sd/sdxl_gen_img.py" and sdxl[0].seed is None
    assert "--d 11" in sdxl[0].prompts_text  # the prompts' own seeds are kept without --seeds
    assert main(["test-checkpoints", str(run.run_dir), "--base-model", "m", "--dry-run", "--epoch", "4"]) == 0
    assert main(["test-checkpoints", str(run.run_dir), "--base-model", "m", "--dry-run", "--epoch", "9"]) == 2


def test_evaluate_cli_writes_results_and_fails_clearly_on_empty_references(tmp_path: Path, capsys):
    run = make_run(tmp_path, epochs=(2,))
    argv = ["evaluate", str(run.run_dir), "--references", str(run.references), "--clip-model", "tiny-clip",
            "--clip-weights", "random", "--cache-dir", str(tmp_path / "c")]
    assert main(argv) == 0
    assert (run.run_dir / "report.html").is_file()
    assert json.loads((run.run_dir / "evaluation" / "best.json").read_text())["epoch"] == 2
    for path in run.references.glob("*.png"):
        path.unlink()
    before = {name: (run.run_dir / name).read_bytes()
              for name in ("evaluation/scores.json", "evaluation/best.json", "report.html")}
    assert main(argv) == 2
    assert "no readable images" in capsys.readouterr().err
    # issue 14: a failed evaluation never replaces good results
    assert {name: (run.run_dir / name).read_bytes() for name in before} == before


FAKE_GEN_IMG = '''
import argparse, sys
from PIL import Image, PngImagePlugin
parser = argparse.ArgumentParser()
for flag in ["--ckpt", "--network_module", "--network_weights", "--network_mul", "--from_file", "--outdir",
             "--images_per_prompt", "--batch_size", "--steps", "--scale", "--sampler", "--seed"]:
    parser.add_argument(flag)
parser.add_argument("--fp16", action="store_true")
parser.add_argument("--sdpa", action="store_true")
args = parser.parse_args()
for i, line in enumerate(l for l in open(args.from_file) if l.strip()):
    text, seed = line.split(" --")[0], line.split("--d ")[1].split()[0]
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", text)
    info.add_text("seed", seed)
    Image.new("RGB", (8, 8), (i * 40, 90, 200)).save(f"{args.outdir}/im_20260101120000_{i:03d}_{seed}.png", pnginfo=info)
print("weights", args.network_weights)
'''


def test_test_checkpoints_runs_the_generator_and_its_images_map_back_to_prompts(tmp_path: Path):
    import sys

    from orchestrator.evaluate._checkpoint_tests import run_jobs
    from orchestrator.kohya.outputs import read_generated_image

    sd_scripts = tmp_path / "sd"
    sd_scripts.mkdir()
    (sd_scripts / "gen_img.py").write_text(FAKE_GEN_IMG)
    run = make_run(tmp_path, epochs=(2,))
    jobs = plan_checkpoint_tests(run.run_dir, base_model="m", trainer_python=sys.executable, sd_scripts=sd_scripts,
                                 seeds=[100])
    outcomes = run_jobs(jobs, report=lambda line: None)
    assert [code for _, code in outcomes] == [0]
    job = jobs[0]
    assert "luca.safetensors" in (job.outdir / "generate.log").read_text()
    prompts = read_prompt_file(job.prompts_file)
    generated = [read_generated_image(p, prompts, epoch=2) for p in sorted(job.outdir.glob("im_*.png"))]
    assert [(g.prompt_index, g.seed, g.epoch) for g in generated] == [(0, 100, 2), (1, 101, 2), (2, 102, 2)]


def test_checkpoint_without_training_samples_is_scored_from_its_test_checkpoints_images(tmp_path: Path,
                                                                                      tiny_encoder):
    import sys

    from orchestrator.evaluate._checkpoint_tests import run_jobs

    sd_scripts = tmp_path / "sd"
    sd_scripts.mkdir()
    (sd_scripts / "gen_img.py").write_text(FAKE_GEN_IMG)
    run = make_run(tmp_path, epochs=(2,), checkpoints=(2, 4))
    jobs = plan_checkpoint_tests(run.run_dir, base_model="m", trainer_python=sys.executable, sd_scripts=sd_scripts,
                                 epochs=[4])
    assert [code for _, code in run_jobs(jobs, report=lambda line: None)] == [0]
    result = evaluate_run(run.run_dir, references=run.references, encoder=tiny_encoder, cache_dir=tmp_path / "c")
    assert sorted(result.epochs) == [2, 4]
    assert [image.name.split("/")[-1][:3] for image in result.epochs[4].images] == ["im_"] * 3
    assert any("epoch 4 has no training-time samples: scored from its test-checkpoints images (seed_own" in p
               for p in result.problems)


def test_a_failed_evaluate_leaves_every_result_byte_identical(tmp_path: Path, capsys):
    # issue 14 #4, other ways to fail than empty references: unreadable references, a missing prompt file.
    run = make_run(tmp_path, epochs=(2, 4))
    argv = ["evaluate", str(run.run_dir), "--references", str(run.references), "--clip-model", "tiny-clip",
            "--clip-weights", "random", "--cache-dir", str(tmp_path / "c")]
    assert main(argv) == 0
    results = ("evaluation/scores.json", "evaluation/best.json", "report.html")
    before = {name: (run.run_dir / name).read_bytes() for name in results}
    broken = tmp_path / "broken_refs"
    broken.mkdir()
    (broken / "ref.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    assert main([*argv[:3], str(broken), *argv[4:]]) != 0
    assert main([*argv, "--prompts", str(tmp_path / "no_such_prompts.txt")]) != 0
    output = capsys.readouterr()
    assert "Traceback" not in output.out + output.err
    assert {name: (run.run_dir / name).read_bytes() for name in results} == before
