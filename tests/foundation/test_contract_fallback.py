"""`config render` with an sd-scripts tree whose argument list cannot be read (issue 14): the shipped copy
of the argument list is used, the command says so, and the render still works."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.kohya.contract import load_contract, recorded_contract

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TRAINER_PYTHONS = {
    "prints_no_json": "#!/bin/sh\necho 'sd-scripts banner, not JSON'\n",
    "prints_nothing": "#!/bin/sh\nexit 0\n",
    "prints_wrong_shape": "#!/bin/sh\necho '{\"args\": [1, 2]}'\n",
    "crashes": "#!/bin/sh\necho 'ModuleNotFoundError: No module named library' >&2\nexit 1\n",
}


def _tree(tmp_path: Path) -> Path:
    tree = tmp_path / "sd-scripts"
    tree.mkdir()
    for script in ("train_network.py", "sdxl_train_network.py"):
        (tree / script).write_text("# a tree whose parser cannot be imported\n")
    return tree


def _python(tmp_path: Path, kind: str) -> str:
    if kind == "missing":
        return str(tmp_path / "no" / "python")
    path = tmp_path / f"{kind}.sh"
    path.write_text(TRAINER_PYTHONS[kind])
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.mark.parametrize("kind", [*TRAINER_PYTHONS, "missing"])
def test_render_falls_back_to_the_shipped_argument_list_and_says_so(kind, machine, tmp_path, monkeypatch, capsys):
    for key in ("dataset_dir", "prompts_file", "base_model_sd15"):
        monkeypatch.setenv(f"LORA_PIPELINE_{key.upper()}", str(getattr(machine, key)))
    monkeypatch.chdir(PROJECT_ROOT)
    tree = _tree(tmp_path)
    code = main(["config", "render", "luca_final_v1_pure", "--out", str(tmp_path / "run"),
                 "--sd-scripts", str(tree), "--trainer-python", _python(tmp_path, kind)])
    output = capsys.readouterr()
    text = " ".join((output.out + output.err).split())
    assert code == 0, text
    assert "Traceback" not in text
    assert "shipped copy" in text and "args.json" in text and str(tree) in text
    assert "contract: recorded" in text
    assert (tmp_path / "run" / "config" / "training.toml").is_file()


def test_a_damaged_contract_cache_is_read_again_not_a_traceback(tmp_path, monkeypatch):
    tree = _tree(tmp_path)
    monkeypatch.setattr("orchestrator.kohya.contract.checkout_commit", lambda _dir: "abc123")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "contract-abc123.json").write_text("{truncated")
    contract = load_contract(tree, _python(tmp_path, "prints_no_json"), cache_dir=cache)
    assert contract.source == "recorded" and contract.fallback_reason
    assert contract.arguments == recorded_contract().arguments
    assert json.loads((PROJECT_ROOT / "orchestrator/kohya/contract_data/args.json").read_text())["commit"] \
        in contract.fallback_reason
