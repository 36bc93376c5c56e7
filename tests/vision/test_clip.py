from __future__ import annotations

import numpy as np
import pytest

from orchestrator.common.errors import UserInputError
from orchestrator.vision import load_clip
from orchestrator.vision.synthetic import synthetic_scene


def test_random_weights_are_reproducible_and_named(tiny_encoder):
    again = load_clip("tiny-clip", "random")
    images = [synthetic_scene(1), synthetic_scene(2)]
    assert np.array_equal(tiny_encoder.embed_images(images), again.embed_images(images))
    assert tiny_encoder.identity == again.identity
    assert tiny_encoder.identity.startswith("open_clip:tiny-clip[") and "random(seed=0" in tiny_encoder.identity


def test_image_and_text_embeddings_are_unit_float32_rows(tiny_encoder):
    images = tiny_encoder.embed_images(synthetic_scene(s) for s in range(5))
    texts = tiny_encoder.embed_texts(["a boy with brown curly hair", "a sea monster"])
    assert images.shape == (5, 32) and texts.shape == (2, 32)
    assert images.dtype == np.float32 and texts.dtype == np.float32
    assert np.allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    assert np.allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert tiny_encoder.embed_images([]).shape == (0, 32)


def test_batching_does_not_change_embeddings(tiny_encoder):
    images = [synthetic_scene(s) for s in range(5)]
    assert np.allclose(tiny_encoder.embed_images(images, batch_size=2),
                       tiny_encoder.embed_images(images, batch_size=5), atol=1e-5)


def test_local_checkpoint_loads_the_same_weights_and_is_named_by_its_hash(tiny_encoder, tmp_path):
    import torch

    checkpoint = tmp_path / "tiny.pt"
    torch.save(tiny_encoder.model.state_dict(), checkpoint)
    loaded = load_clip("tiny-clip", str(checkpoint))
    image = [synthetic_scene(4)]
    assert np.allclose(loaded.embed_images(image), tiny_encoder.embed_images(image), atol=1e-6)
    assert "sha256:" in loaded.identity and loaded.identity != tiny_encoder.identity


def test_unusable_model_or_weights_say_what_to_do(tmp_path):
    with pytest.raises(UserInputError, match="unknown open_clip model"):
        load_clip("ViT-Nonexistent-99", "random")
    with pytest.raises(UserInputError, match="no pretrained tag 'bogus'"):
        load_clip("ViT-B-32", "bogus")
    with pytest.raises(UserInputError, match="checkpoint file not found"):
        load_clip("tiny-clip", str(tmp_path / "missing.pt"))
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserInputError, match="cannot load this checkpoint"):
        load_clip("tiny-clip", str(tmp_path / "garbage.pt"))


def test_offline_pretrained_tag_points_to_clip_weights_path(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf_home"))  # nothing cached there
    with pytest.raises(UserInputError, match="--clip-weights PATH"):
        load_clip("RN50", "openai")
