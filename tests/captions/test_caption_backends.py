"""Loading Qwen VL weights: the production from_pretrained path, and clear errors when it cannot work."""

from __future__ import annotations

import pytest
from PIL import Image

from orchestrator.captions.backends import BACKENDS, load_qwen_backend, resolve_weights
from orchestrator.common.errors import UserInputError


def test_default_weights_are_the_hub_ids():
    assert resolve_weights("qwen2_vl", None) == ("Qwen/Qwen2-VL-7B-Instruct", False)
    assert resolve_weights("qwen2_5_vl", "") == (BACKENDS["qwen2_5_vl"][1], False)


@pytest.mark.parametrize("weights", ["/no/such/model", "./models/qwen", "~/qwen-vl", "a/b/c"])
def test_model_path_that_does_not_exist_is_named(weights):
    with pytest.raises(UserInputError, match="model path does not exist") as caught:
        resolve_weights("qwen2_vl", weights)
    assert caught.value.path is not None and caught.value.path.name == weights.rsplit("/", 1)[-1]


def test_folder_without_a_saved_model_is_refused(tmp_path):
    with pytest.raises(UserInputError, match="no config.json") as caught:
        resolve_weights("qwen2_vl", str(tmp_path))
    assert caught.value.path == tmp_path


def test_unknown_backend_is_refused():
    with pytest.raises(UserInputError, match="unknown caption model 'llava'"):
        resolve_weights("llava", None)


def test_hub_id_without_network_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserInputError) as caught:
        load_qwen_backend("qwen2_vl", "nobody-here/no-such-vlm")
    message = str(caught.value)
    assert "nobody-here/no-such-vlm" in message and "HF_HUB_OFFLINE" in message
    assert "--weights PATH" in message and caught.value.key == "weights"


def test_cuda_requested_without_cuda_is_a_clear_error(tiny_qwen2_vl_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UserInputError, match="CUDA is not available"):
        load_qwen_backend("qwen2_vl", str(tiny_qwen2_vl_dir), device="cuda")


def test_batches_are_left_padded_and_answer_like_single_images(tiny_backend):
    # Different aspect ratios give different numbers of visual tokens, hence padding.
    images = [Image.new("RGB", size, colour) for size, colour in
              [((56, 56), (200, 10, 10)), ((112, 56), (10, 200, 10)), ((28, 112), (10, 10, 200))]]
    inputs = tiny_backend.prepare(images, "pose?")
    mask = inputs["attention_mask"]
    assert (mask[:, -1] == 1).all() and (mask[:, 0] == 0).any()
    batched = tiny_backend.describe(images, "pose?")
    assert batched == [tiny_backend.describe([image], "pose?")[0] for image in images]
    assert len(set(batched)) > 1  # the answers depend on the image


def test_qwen2_5_vl_backend_loads_and_generates(tmp_path):
    from orchestrator.captions.tiny_model import build_tiny_qwen2_vl

    folder = build_tiny_qwen2_vl(tmp_path / "tiny25", kind="qwen2_5_vl")
    backend = load_qwen_backend("qwen2_5_vl", str(folder), max_new_tokens=6)
    assert type(backend.model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert backend.processor.tokenizer.padding_side == "left"
    answers = backend.describe([Image.new("RGB", (64, 48), (1, 2, 3))] * 2, "pose?")
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)


def test_weights_of_the_other_family_are_named(tiny_qwen2_vl_dir):
    with pytest.raises(UserInputError, match="'qwen2_vl' model, not 'qwen2_5_vl'") as caught:
        load_qwen_backend("qwen2_5_vl", str(tiny_qwen2_vl_dir))
    assert "--model qwen2_vl" in str(caught.value) and caught.value.path == tiny_qwen2_vl_dir
