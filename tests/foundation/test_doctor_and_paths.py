from __future__ import annotations

from pathlib import Path

from orchestrator.cli import main
from orchestrator.common.gpu import query_gpus
from orchestrator.config.paths import load_paths
from orchestrator.doctor import check_base_models, check_sd_scripts, check_trainer_python

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_gpu_query_answers_on_a_machine_without_a_driver():
    report = query_gpus()
    assert report.available == bool(report.gpus)
    if not report.available:
        assert report.reason


def test_doctor_runs_to_the_end_and_reports_every_topic(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("LORA_PIPELINE_SD_SCRIPTS", str(tmp_path / "nowhere"))
    monkeypatch.setenv("LORA_PIPELINE_TRAINER_PYTHON", str(tmp_path / "no-python"))
    assert main(["doctor"]) == 0
    assert main(["doctor", "--strict"]) == 1
    output = capsys.readouterr().out
    for topic in ("python", "torch", "gpu", "tmux", "sd-scripts", "trainer python", "base model sd15", "disk"):
        assert topic in output
    assert "git submodule update --init" in output


def test_sd_scripts_commit_is_compared_with_the_pin(tmp_path):
    (tmp_path / "train_network.py").write_text("")
    (tmp_path / ".lora_pipeline_commit").write_text("0123456789abcdef\n")
    paths = load_paths(PROJECT_ROOT).with_overrides(sd_scripts=tmp_path)
    [finding] = check_sd_scripts(paths)
    assert finding.status == "warn" and "0123456789" in finding.detail and "pin" in finding.detail


def test_trainer_python_that_lacks_imports_fails_with_the_module_named(tmp_path):
    import sys

    paths = load_paths(PROJECT_ROOT).with_overrides(trainer_python=sys.executable)
    [finding] = check_trainer_python(paths)
    # This test environment has torch and diffusers but not voluptuous (a trainer-only package).
    assert finding.status in ("ok", "fail")
    if finding.status == "fail":
        assert "voluptuous" in finding.detail


def test_local_base_model_path_that_does_not_exist_fails(tmp_path):
    paths = load_paths(PROJECT_ROOT).with_overrides(base_model_sd15=str(tmp_path / "missing.safetensors"))
    findings = {f.topic: f for f in check_base_models(paths)}
    assert findings["base model sd15"].status == "fail"
    assert findings["base model sdxl"].status == "warn"  # a hub id


def test_environment_overrides_paths_file(monkeypatch, tmp_path):
    monkeypatch.setenv("LORA_PIPELINE_OUTPUT_ROOT", str(tmp_path / "runs"))
    monkeypatch.setenv("LORA_PIPELINE_SD_SCRIPTS", "relative/sd")
    paths = load_paths(PROJECT_ROOT)
    assert paths.output_root == tmp_path / "runs"
    assert paths.sd_scripts == PROJECT_ROOT / "relative" / "sd"
    assert paths.tokenizer_cache_dir == ""
