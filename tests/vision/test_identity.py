from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from orchestrator.vision import IdentityRule, identity_scores
from orchestrator.vision.synthetic import synthetic_scene

REFS = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])


def test_mean_of_top_k_averages_the_k_best_references():
    frame = np.array([[1.0, 0.0]])  # cosines to REFS: 1.0, 0.6, 0.0
    assert identity_scores(frame, REFS, IdentityRule("mean_top_k", k=2))[0] == pytest.approx(0.8)
    assert identity_scores(frame, REFS, IdentityRule("max"))[0] == pytest.approx(1.0)
    assert identity_scores(frame, REFS, IdentityRule("mean"))[0] == pytest.approx(1.6 / 3)


def test_k_larger_than_reference_count_uses_all_references():
    frame = np.array([[1.0, 0.0]])
    assert identity_scores(frame, REFS, IdentityRule("mean_top_k", k=50))[0] == pytest.approx(1.6 / 3)


def test_rows_are_normalised_so_scale_does_not_matter():
    scores = identity_scores(np.array([[5.0, 0.0], [0.0, 0.1]]), REFS * 3, IdentityRule("max"))
    assert scores == pytest.approx([1.0, 1.0])
    assert scores.dtype == np.float32


def test_bad_rules_and_shapes_are_refused():
    with pytest.raises(ValueError, match="unknown identity rule"):
        IdentityRule("median")
    with pytest.raises(ValueError, match="k must be"):
        IdentityRule(k=0)
    with pytest.raises(ValueError, match="at least one reference"):
        identity_scores(np.ones((2, 2)), np.zeros((0, 2)))
    with pytest.raises(ValueError, match="different models"):
        identity_scores(np.ones((2, 3)), np.ones((1, 2)))
    assert identity_scores(np.zeros((0, 2)), REFS).shape == (0,)


def test_same_image_resized_scores_higher_than_any_other_image(tiny_encoder):
    references = [synthetic_scene(seed) for seed in (10, 11, 12)]
    resized_copy = references[1].resize((200, 150), Image.Resampling.LANCZOS)
    others = [synthetic_scene(seed) for seed in range(20, 30)]
    reference_vectors = tiny_encoder.embed_images(references)
    scores = identity_scores(tiny_encoder.embed_images([resized_copy, *others]), reference_vectors,
                             IdentityRule("max"))
    assert scores[0] > 0.995
    assert scores[0] - scores[1:].max() > 0.02
