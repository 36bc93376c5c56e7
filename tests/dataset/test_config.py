from __future__ import annotations

import pytest
import toml

from orchestrator.common.errors import UserInputError
from orchestrator.dataset.config import CurationConfig, default_config_path, load_curation_config


def test_documented_defaults_file_matches_the_code_defaults():
    assert toml.load(default_config_path()) == CurationConfig().to_dict()


def test_override_file_changes_only_what_it_names(tmp_path):
    override = tmp_path / "strict.toml"
    override.write_text("[quality]\nmin_laplacian_variance = 100\n[identity]\nthreshold = 0.8\n")
    config = load_curation_config(override)
    assert config.quality.min_laplacian_variance == 100.0
    assert isinstance(config.quality.min_laplacian_variance, float)
    assert config.identity.threshold == 0.8
    assert config.quality.min_side == CurationConfig().quality.min_side


@pytest.mark.parametrize(("text", "key"), [
    ("[qualty]\nmin_side = 1\n", "qualty"),
    ("[quality]\nmin_sid = 1\n", "quality.min_sid"),
    ("[quality]\nmin_side = 'big'\n", "quality.min_side"),
    ("[identity]\nrule = 'median'\n", "identity.rule"),
])
def test_typos_and_wrong_types_are_refused_by_name(tmp_path, text, key):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(UserInputError) as caught:
        load_curation_config(bad)
    assert caught.value.key == key
