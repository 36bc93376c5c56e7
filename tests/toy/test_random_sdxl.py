"""The SDXL tokenizer folders the random SDXL model uses, and its written-out configs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from orchestrator.toy.random_sdxl import SDXL_UNET_CONFIG, build_sdxl_tokenizer_dirs, is_random_sdxl
from orchestrator.vision.clip_tokenizer import BIGG_TOKENIZER_FOLDER_NAME, TOKENIZER_FOLDER_NAME

pytest.importorskip("open_clip")
transformers = pytest.importorskip("transformers")

TRAINER_PYTHON = Path(os.environ.get("LORA_PIPELINE_TRAINER_PYTHON", ".venv-trainer/bin/python"))


@pytest.fixture(scope="module")
def sdxl_tokenizers(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_sdxl_tokenizer_dirs(tmp_path_factory.mktemp("tokenizers"))


def test_both_folders_are_named_as_sd_scripts_looks_for_them(sdxl_tokenizers: tuple[Path, Path]) -> None:
    vit_l, big_g = sdxl_tokenizers
    assert (vit_l.name, big_g.name) == (TOKENIZER_FOLDER_NAME, BIGG_TOKENIZER_FOLDER_NAME)
    assert big_g.name == "laion_CLIP-ViT-bigG-14-laion2B-39B-b160k"  # sd-scripts' TOKENIZER2_PATH, "/" -> "_"
    assert vit_l.parent == big_g.parent


def test_folders_hold_the_files_older_transformers_needs(sdxl_tokenizers: tuple[Path, Path]) -> None:
    for folder in sdxl_tokenizers:
        assert (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()


def test_bigg_pads_with_exclamation_mark_id_0_and_shares_vit_l_ids(sdxl_tokenizers: tuple[Path, Path]) -> None:
    vit_l, big_g = (transformers.CLIPTokenizer.from_pretrained(folder) for folder in sdxl_tokenizers)
    assert big_g.pad_token == "!" and big_g.pad_token_id == 0
    assert vit_l.pad_token == "<|endoftext|>"
    assert big_g("a photo of a cat").input_ids == vit_l("a photo of a cat").input_ids


@pytest.mark.skipif(not TRAINER_PYTHON.exists(), reason="no trainer Python (.venv-trainer) here")
def test_the_trainers_transformers_loads_both_folders(sdxl_tokenizers: tuple[Path, Path]) -> None:
    code = ("import sys\nfrom transformers import CLIPTokenizer\n"
            "for f in sys.argv[1:]:\n    print(CLIPTokenizer.from_pretrained(f)('a photo of a cat').input_ids)")
    result = subprocess.run([str(TRAINER_PYTHON), "-c", code, *map(str, sdxl_tokenizers)], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[:2] == ["[49406, 320, 1125, 539, 320, 2368, 49407]"] * 2


def test_unet_config_is_sdxl_base(tmp_path: Path) -> None:
    assert SDXL_UNET_CONFIG["transformer_layers_per_block"] == [1, 2, 10]
    assert SDXL_UNET_CONFIG["cross_attention_dim"] == 2048
    assert SDXL_UNET_CONFIG["projection_class_embeddings_input_dim"] == 2816  # 1280 pooled + 6 x 256 time ids
    assert not is_random_sdxl(tmp_path)
    (tmp_path / "lora_pipeline_random_sdxl.json").write_text(json.dumps({}), encoding="utf-8")
    assert is_random_sdxl(tmp_path)
