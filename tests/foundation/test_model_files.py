"""What a model or LoRA file is, read from its safetensors header; another family's file is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.common.errors import UserInputError
from orchestrator.evaluate._checkpoint_tests import plan_checkpoint_tests
from orchestrator.kohya.families import FAMILIES
from orchestrator.kohya.model_files import describe_model_file, require_model_family
from tests.evaluate.fake_run import make_run
from tests.foundation.model_file_fixtures import (
    flux_checkpoint,
    lora,
    sd3_checkpoint,
    sd15_checkpoint,
    sdxl_checkpoint,
)


@pytest.mark.parametrize(("build", "family"), [
    (flux_checkpoint, "flux1"), (lambda p: flux_checkpoint(p, chroma=True), "chroma"),
    (sd3_checkpoint, "sd35"), (sdxl_checkpoint, "sdxl"), (sd15_checkpoint, "sd15"),
])
def test_checkpoints_are_told_apart_by_their_keys(build, family, tmp_path):
    looks = describe_model_file(build(tmp_path / "m.safetensors"))
    assert (looks.family, looks.kind) == (family, "model")


@pytest.mark.parametrize("family", ["sd15", "sdxl", "flux1", "sd35"])
def test_loras_are_told_apart_by_their_key_prefixes(family, tmp_path):
    looks = describe_model_file(lora(tmp_path / "l.safetensors", family))
    assert (looks.family, looks.kind) == (family, "lora")


def test_a_chroma_lora_is_told_from_a_flux_lora_by_sd_scripts_metadata(tmp_path):
    path = lora(tmp_path / "l.safetensors", "flux1", metadata={"ss_base_model_version": "chroma"})
    assert describe_model_file(path).family == "chroma"


def test_a_diffusers_folder_is_read_from_its_model_index(tmp_path):
    (tmp_path / "model_index.json").write_text('{"_class_name": "StableDiffusionXLPipeline"}')
    assert describe_model_file(tmp_path).family == "sdxl"


@pytest.mark.parametrize("content", [b"", b"short", b"\xff" * 64, b"\x10\x00\x00\x00\x00\x00\x00\x00[1, 2, 3]     "])
def test_a_file_that_is_no_safetensors_is_unknown_never_an_error(content, tmp_path):
    path = tmp_path / "odd.safetensors"
    path.write_bytes(content)
    looks = describe_model_file(path)
    assert looks.family is None and "unreadable" in looks.evidence
    require_model_family(path, FAMILIES["flux1"], key="base_model_flux1")  # nothing to refuse


def test_another_familys_checkpoint_is_refused_with_what_it_looks_like(tmp_path):
    flux = flux_checkpoint(tmp_path / "flux.safetensors")
    with pytest.raises(UserInputError, match=r"SDXL expected, but .* looks like a FLUX.1 model \(a FLUX-style "
                                             r"transformer: 2 double and 1 single blocks\)"):
        require_model_family(flux, FAMILIES["sdxl"], key="base_model_sdxl")


def test_an_sd15_lora_passed_to_a_flux_evaluation_is_refused(tmp_path):
    run = make_run(tmp_path, epochs=(2,))
    checkpoint = next(run.run_dir.glob("*.safetensors"))
    lora(checkpoint, "sd15")
    with pytest.raises(UserInputError, match=r"a FLUX.1 LoRA expected, but .* looks like a SD1.5 LoRA"):
        plan_checkpoint_tests(run.run_dir, base_model="m", trainer_python="py", sd_scripts=Path("/sd"), family="flux1")
    assert main(["test-checkpoints", str(run.run_dir), "--base-model", "m", "--dry-run", "--family", "flux1"]) == 2


def test_a_flux_lora_of_a_flux_run_is_told_no_generator_is_wired_yet(tmp_path):
    run = make_run(tmp_path, epochs=(2,))
    lora(next(run.run_dir.glob("*.safetensors")), "flux1")
    with pytest.raises(UserInputError, match=r"no sd-scripts image generator is wired for FLUX.1"):
        plan_checkpoint_tests(run.run_dir, base_model="m", trainer_python="py", sd_scripts=Path("/sd"), family="flux1")


def test_an_sdxl_base_model_for_an_sd15_lora_test_is_refused(tmp_path):
    run = make_run(tmp_path, epochs=(2,))
    lora(next(run.run_dir.glob("*.safetensors")), "sd15")
    base = sdxl_checkpoint(tmp_path / "sdxl.safetensors")
    with pytest.raises(UserInputError, match=r"key '--base-model': SD1.5 expected, but .* looks like a SDXL model"):
        plan_checkpoint_tests(run.run_dir, base_model=str(base), trainer_python="py", sd_scripts=Path("/sd"),
                              family="sd15")
