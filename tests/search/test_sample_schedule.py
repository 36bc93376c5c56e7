"""sd-scripts' sampling and validation schedule (library/train_util.py sample_images_common, train_network.py)."""

from __future__ import annotations

import pytest

from orchestrator.kohya.schedule import sample_epochs, validation_epochs


def test_samples_fall_on_multiples_only_and_the_last_epoch_only_when_it_is_one() -> None:
    assert sample_epochs(16, 2) == [2, 4, 6, 8, 10, 12, 14, 16]
    assert sample_epochs(15, 2) == [2, 4, 6, 8, 10, 12, 14]  # no sample at epoch 15
    assert sample_epochs(5, 1) == [1, 2, 3, 4, 5]
    assert sample_epochs(2, 3) == []


def test_validation_runs_every_epoch_unless_told_otherwise() -> None:
    assert validation_epochs(4, None) == [1, 2, 3, 4]
    assert validation_epochs(7, 3) == [3, 6]


def test_a_zero_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="sample_every_n_epochs must be at least 1"):
        sample_epochs(10, 0)
    with pytest.raises(ValueError, match="validate_every_n_epochs must be at least 1"):
        validation_epochs(10, 0)
