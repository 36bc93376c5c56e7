"""The prior bench's moved surfaces: any protocol surface, its optimum moved by the stated amounts."""

from __future__ import annotations

import pytest

from orchestrator.search.surface import missing_members
from orchestrator.search.surfaces import LateLearnerSurface, QuadraticSurface
from tests.bench_support import load_bench

FLAT = {"learning_rate": 8e-5, "unet_lr": 8e-5, "text_encoder_lr": 5e-5, "network_dim": 128, "network_alpha": 64,
        "network_alpha_ratio": 0.5, "lr_scheduler": "cosine", "max_train_epochs": 20, "sample_every_n_epochs": 2,
        "optimizer_type": "AdamW", "gradient_accumulation_steps": 2, "lr_warmup_steps": 100, "min_snr_gamma": 5}


@pytest.fixture(scope="module")
def bench():
    return load_bench("search_prior")


@pytest.mark.parametrize("family", [QuadraticSurface, LateLearnerSurface])
def test_a_moved_surface_scores_a_config_as_its_base_scores_the_moved_config(bench, family) -> None:
    base = family(seed=3)
    moved = bench.MovedSurface(base, lr_factor=1.2, te_factor=0.8, ratio_shift=0.05)
    assert missing_members(moved) == []
    shifted = {**FLAT, "learning_rate": 8e-5 * 1.2, "unet_lr": 8e-5 * 1.2, "text_encoder_lr": 5e-5 * 0.8,
               "network_alpha_ratio": 0.55, "network_alpha": 70}
    assert moved.best_sampled_score(shifted) == pytest.approx(base.best_sampled_score(FLAT))
    assert moved.observe(shifted, 10) == pytest.approx(base.observe({**FLAT, "network_alpha": 64}, 10))
    assert moved.epoch_cost(shifted) == base.epoch_cost(shifted)  # the config really trained pays


def test_an_unrelated_surface_rotates_the_choices_but_keeps_the_epochs(bench) -> None:
    from orchestrator.search.space import load_search_space

    space = load_search_space(bench.SPACE)
    unrelated = bench.second_surface("unrelated", QuadraticSurface, 0, space)
    moved = unrelated.moved(FLAT)
    assert moved["lr_scheduler"] == "constant" and moved["network_dim"] == 256
    assert moved["max_train_epochs"] == 20
    assert unrelated.base.seed == 1000
