"""What we write, sd-scripts' own reader reads back unchanged.

sd-scripts parses ``--config_file`` and ``--dataset_config`` with the ``toml`` package (TOML 0.5); we write
with ``tomli-w`` (TOML 1.0). Each value must come back equal and of the same type (``0.0`` stays a float,
``1e-05`` stays ``1e-05``), and keys set to ``None`` must be absent, since TOML cannot write a null.
"""

from __future__ import annotations

from pathlib import Path, PureWindowsPath

import pytest
import toml

from orchestrator.common.tomlfile import dumps_toml, parse_toml, write_toml
from orchestrator.kohya.command import halve_batch_size
from orchestrator.kohya.render import render_run
from orchestrator.quickstart.steps import PRESET_FILE

PRESETS = ["luca_final_v1_pure", "luca_trial3.6_optimized", "sdxl_16gb_optimized", str(PRESET_FILE)]


def assert_same_document(read_by_sd_scripts, expected, where="document"):
    assert type(read_by_sd_scripts) is type(expected) or (
        isinstance(read_by_sd_scripts, dict) and isinstance(expected, dict)), f"{where}: type differs"
    if isinstance(expected, dict):
        assert set(read_by_sd_scripts) == set(expected), where
        for key, value in expected.items():
            assert_same_document(read_by_sd_scripts[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(read_by_sd_scripts) == len(expected), where
        for index, (got, value) in enumerate(zip(read_by_sd_scripts, expected, strict=True)):
            assert_same_document(got, value, f"{where}[{index}]")
    else:
        assert read_by_sd_scripts == expected, where


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: Path(p).stem)
def test_rendered_files_read_the_same_with_sd_scripts_reader(preset, machine, tmp_path):
    rendered = render_run(preset, paths=machine, run_dir=tmp_path / "run")
    for path, document in ((rendered.config_file, rendered.sections),
                           (rendered.dataset_config_file, rendered.dataset)):
        text = path.read_text(encoding="utf-8")
        assert_same_document(toml.loads(text), parse_toml(dumps_toml(document)), path.name)
        assert_same_document(toml.loads(text), parse_toml(text), path.name)


def test_halved_batch_files_read_the_same_with_sd_scripts_reader(machine, tmp_path):
    rendered = render_run("luca_final_v1_pure", paths=machine, run_dir=tmp_path / "run")
    assert halve_batch_size(rendered.config_file, rendered.dataset_config_file) is not None
    for path in (rendered.config_file, rendered.dataset_config_file):
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# lora-pipeline:")
        assert_same_document(toml.loads(text), parse_toml(text), path.name)


def test_awkward_values_survive_both_readers(tmp_path):
    document = {
        "training": {
            "zero": 0.0, "tiny": 1e-05, "huge": 1.5e300, "negative": -0.25, "integer": 0, "flag": False,
            "unset": None, "path": Path("/data/my run/dataset"), "windows": str(PureWindowsPath(r"C:\lora\x")),
            "quoted": 'say "hi"\tthen\nleave', "unicode": "Lüca 🐟", "empty": [],
            "optimizer_args": ["weight_decay=0.01", "betas=0.9,0.99"], "numbers": list(range(40)),
        },
        "general": {"resolution": [512, 768]},
        "datasets": [{"batch_size": 2, "subsets": [{"image_dir": "/a", "num_repeats": 10, "keep_tokens": None},
                                                   {"image_dir": "/b", "num_repeats": 1}]}],
    }
    expected = {
        **document,
        "training": {key: (str(value) if isinstance(value, Path) else value)
                     for key, value in document["training"].items() if value is not None},
        "datasets": [{"batch_size": 2, "subsets": [{"image_dir": "/a", "num_repeats": 10},
                                                   {"image_dir": "/b", "num_repeats": 1}]}],
    }
    path = write_toml(tmp_path / "training.toml", document, header="# a comment sd-scripts skips\n\n")
    text = path.read_text(encoding="utf-8")
    assert_same_document(toml.loads(text), expected)
    assert_same_document(parse_toml(text), expected)
