"""The shipped contract is the recorded one, and the live reader produces the same shape."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from orchestrator.kohya.checkout import PINNED_COMMIT
from orchestrator.kohya.contract import contract_from_records, recorded_contract
from orchestrator.kohya.families import SCRIPTS

SHARED = Path(__file__).resolve().parents[3] / "shared" / "sd-scripts-contract"


def test_recorded_contract_has_both_scripts_and_sdxl_only_arguments():
    contract = recorded_contract()
    assert contract.commit == PINNED_COMMIT
    sd15 = contract.arguments_of("train_network.py")
    sdxl = contract.arguments_of("sdxl_train_network.py")
    assert len(sd15) == 193 and len(sdxl) == 196
    assert set(sdxl) - set(sd15) == {"cache_text_encoder_outputs", "cache_text_encoder_outputs_to_disk",
                                     "disable_mmap_load_safetensors"}
    assert sd15["mixed_precision"].choices == ("no", "fp16", "bf16")
    assert sd15["xformers"].is_flag and sd15["text_encoder_lr"].is_list
    assert "image_dir" in contract.dataset_schema.subset and "image_dir" not in contract.dataset_schema.general


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/sd-scripts-contract is not beside this checkout")
def test_shipped_copy_matches_the_shared_contract_files():
    shipped = Path(__file__).resolve().parents[2] / "orchestrator" / "kohya" / "contract_data"
    for name in ("args.json", "dataset_config_keys.json"):
        assert json.loads((shipped / name).read_text()) == json.loads((SHARED / name).read_text()), name
    # The runner's tests keep their own copy of the real transcripts, so CI needs no ../shared.
    transcripts = Path(__file__).resolve().parents[1] / "runner" / "sd_scripts_transcripts"
    for name in ("cpu_run_transcript.log", "cpu_run_transcript_sdxl.log"):
        assert (transcripts / name).read_bytes() == (SHARED / name).read_bytes(), name


def test_round_trip_through_records_keeps_every_argument():
    contract = recorded_contract()
    args_record = {"commit": contract.commit}
    for script, arguments in contract.arguments.items():
        args_record[script] = [
            {"dest": a.dest, "option_strings": [a.option],
             "action": "_StoreTrueAction" if a.is_flag else "_StoreAction", "type": a.value_type,
             "default": a.default, "choices": list(a.choices) if a.choices else None,
             "nargs": "*" if a.is_list else None}
            for a in arguments.values()
        ]
    dataset_record = {
        "general": {k: {"type": t} for k, t in contract.dataset_schema.general.items()},
        "dataset_dreambooth": {k: {"type": t} for k, t in contract.dataset_schema.dataset.items()},
        "subset_dreambooth": {k: {"type": t} for k, t in contract.dataset_schema.subset.items()},
    }
    again = contract_from_records(args_record, dataset_record, source="recorded")
    assert again.arguments == contract.arguments
    assert again.dataset_schema == contract.dataset_schema


@pytest.mark.sd_scripts
def test_live_parser_agrees_with_the_recorded_contract(sd_scripts_dir, trainer_python):
    from orchestrator.kohya.contract import introspect_live

    args_record, dataset_record = introspect_live(sd_scripts_dir, trainer_python)
    live = contract_from_records(args_record, dataset_record, source="live")
    recorded = recorded_contract()
    assert live.commit == recorded.commit == PINNED_COMMIT  # an exported tree's marker, not the enclosing repo
    for script in SCRIPTS:  # every family's script, FLUX.1 and SD3.5 included
        assert set(live.arguments_of(script)) == set(recorded.arguments_of(script))
        for dest, spec in recorded.arguments_of(script).items():
            assert live.arguments_of(script)[dest].choices == spec.choices, dest
            assert live.arguments_of(script)[dest].value_type == spec.value_type, dest
    # Types too, not only names: a key the live reading cannot type is a key whose bad values pass our checks.
    assert live.dataset_schema == recorded.dataset_schema


def _scalar_or_twodim(klass, value):
    return value


def _twodim(klass, value):
    return value


def test_introspection_names_the_shape_of_sd_scripts_converters():
    """ConfigSanitizer types resolution and face_crop_aug_range by partials of private helpers; reading those as
    an opaque validator let `resolution = "big"` through on a live checkout."""
    import functools

    from orchestrator.kohya._introspect import describe_validator

    assert describe_validator(functools.partial(_scalar_or_twodim, int)) == "int | [int, int]"
    assert describe_validator(functools.partial(_twodim, float)) == "[float, float]"
    assert describe_validator(int) == "int"


@pytest.mark.sd_scripts
def test_rendered_preset_is_accepted_by_the_real_parser(sd_scripts_dir, trainer_python, machine, tmp_path):
    """The real sd-scripts reads our rendered files without complaint (argparse + config reader)."""
    from orchestrator.kohya.render import render_run

    rendered = render_run("luca_final_v1_pure", paths=machine, run_dir=tmp_path / "run")
    probe = ("import sys; sys.path.insert(0, '.'); import train_network; from library import train_util;"
             "p = train_network.setup_parser(); a = p.parse_args();"
             "a = train_util.read_config_from_file(a, p); print(a.network_dim, a.learning_rate, a.sdpa)")
    completed = subprocess.run([trainer_python, "-c", probe, "--config_file", str(rendered.config_file)], cwd=sd_scripts_dir,
                               capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip().splitlines()[-1] == "64 8e-05 True"
