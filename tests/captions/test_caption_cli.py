"""`lora-pipeline caption` and the guide's wrapper script, end to end on the tiny model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli import main

WRAPPER = Path(__file__).resolve().parents[2] / "scripts" / "training" / "regenerate_captions_vlm.py"


def test_caption_command_writes_captions_and_a_summary(frames, luca_path, tiny_qwen2_vl_dir, capsys):
    argv = ["caption", str(frames), "--profile", str(luca_path), "--weights", str(tiny_qwen2_vl_dir),
            "--device", "cpu", "--batch-size", "2", "--max-new-tokens", "8"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "captions written: 4" in out and "CLIP tokens per caption (sd15, limit 75)" in out
    assert len(list(frames.glob("*.txt"))) == 4
    assert main(argv) == 0
    assert "all 4 images already have captions" in capsys.readouterr().out


def test_failures_make_the_exit_code_non_zero(frames, luca_path, tiny_qwen2_vl_dir, capsys):
    (frames / "zz_broken.png").write_bytes(b"garbage")
    code = main(["caption", str(frames), "--profile", str(luca_path), "--weights", str(tiny_qwen2_vl_dir),
                 "--device", "cpu", "--max-new-tokens", "4"])
    assert code == 1
    captured = capsys.readouterr()
    assert "captions written: 4" in captured.out
    assert "zz_broken.png: unreadable image" in captured.err


def test_dry_run_prints_the_prompt_and_writes_nothing(frames, luca_path, luca, capsys):
    from orchestrator.captions.scene import build_prompt

    assert main(["caption", str(frames), "--profile", str(luca_path), "--dry-run",
                 "--weights", "/no/such/model"]) == 0  # nothing is loaded
    out = capsys.readouterr().out
    assert str(frames / "frame_000.png") in out and build_prompt(luca) in out
    assert not list(frames.glob("*.txt"))


def test_bad_profile_and_missing_weights_exit_with_the_named_problem(frames, tmp_path, luca_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(luca_path.read_text().replace("trigger:", "trigga:"))
    assert main(["caption", str(frames), "--profile", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "'trigger'" in err
    assert main(["caption", str(frames), "--profile", str(luca_path), "--weights", "/no/such/model",
                 "--device", "cpu"]) == 2
    assert "/no/such/model: model path does not exist" in capsys.readouterr().err
    assert not list(frames.glob("*.txt"))


def test_batch_size_below_one_is_refused_before_loading_anything(frames, luca_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["caption", str(frames), "--profile", str(luca_path), "--batch-size", "0"])
    assert caught.value.code == 2 and "must be at least 1" in capsys.readouterr().err


def test_empty_folder_exits_with_its_name(tmp_path, luca_path, capsys):
    assert main(["caption", str(tmp_path), "--profile", str(luca_path), "--dry-run"]) == 2
    assert f"{tmp_path}: no images" in capsys.readouterr().err


def _load_wrapper():
    import importlib.util

    spec = importlib.util.spec_from_file_location("regenerate_captions_vlm", WRAPPER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_guide_wrapper_runs_as_a_script(frames, luca_path, luca):
    result = subprocess.run(
        [sys.executable, str(WRAPPER), "--image-dir", str(frames), "--character-profile", str(luca_path),
         "--model", "Qwen/Qwen2-VL-7B-Instruct", "--device", "cpu", "--dry-run"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert luca.name in result.stdout and "frame_000.png" in result.stdout


def test_guide_wrapper_flags_write_captions_to_the_output_dir(frames, tmp_path, luca_path, tiny_qwen2_vl_dir):
    out_dir = tmp_path / "captions"
    argv = _load_wrapper().translate([
        "--image-dir", str(frames), "--output-dir", str(out_dir), "--model", str(tiny_qwen2_vl_dir),
        "--character-profile", str(luca_path), "--device", "cpu", "--max-new-tokens", "4", "--batch-size", "4",
    ])
    assert main(argv) == 0
    assert sorted(p.name for p in out_dir.glob("*.txt")) == [f"frame_{i:03d}.txt" for i in range(4)]
    assert not list(frames.glob("*.txt"))


def test_wrapper_maps_model_names_to_backends():
    module = _load_wrapper()
    base = ["--image-dir", "imgs", "--character-profile", "p.yaml"]
    assert module.translate([*base, "--model", "Qwen/Qwen2.5-VL-7B-Instruct"])[4:] == [
        "--model", "qwen2_5_vl", "--weights", "Qwen/Qwen2.5-VL-7B-Instruct"]
    assert module.translate([*base, "--model", "qwen2_vl", "--overwrite"]) == [
        "caption", "imgs", "--profile", "p.yaml", "--model", "qwen2_vl", "--overwrite"]
