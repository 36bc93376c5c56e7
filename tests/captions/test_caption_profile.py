"""Character profiles: both shipped profiles load; every bad key is named with its file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestrator.captions.profile import DEFAULT_TEMPLATE, load_profile
from orchestrator.common.errors import UserInputError

LUCA_PROFILE = Path(__file__).resolve().parents[2] / "configs" / "characters" / "luca.yaml"
ALBERTO_PROFILE = LUCA_PROFILE.with_name("alberto.yaml")


def _write_profile(tmp_path: Path, **changes: object) -> Path:
    data = yaml.safe_load(LUCA_PROFILE.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    path = tmp_path / "character.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_luca_profile_loads_with_identity_text_from_the_file():
    profile = load_profile(LUCA_PROFILE)
    raw = yaml.safe_load(LUCA_PROFILE.read_text())
    assert profile.name == raw["name"] and profile.year == raw["year"]
    assert profile.character_text == ", ".join([raw["trigger"], *raw["description"]])
    assert profile.forbidden == tuple(raw["forbidden"])
    assert profile.source == LUCA_PROFILE


def test_a_second_character_is_one_new_file():
    alberto, luca = load_profile(ALBERTO_PROFILE), load_profile(LUCA_PROFILE)
    assert alberto.trigger != luca.trigger
    assert alberto.template == DEFAULT_TEMPLATE  # optional key left out


@pytest.mark.parametrize("key", ["name", "trigger", "description", "forbidden"])
def test_missing_key_is_named_with_the_file(tmp_path, key):
    path = _write_profile(tmp_path, **{key: None})
    with pytest.raises(UserInputError) as caught:
        load_profile(path)
    assert caught.value.key == key and caught.value.path == path
    assert str(path) in str(caught.value) and f"'{key}'" in str(caught.value)


def test_unknown_key_is_named(tmp_path):
    path = _write_profile(tmp_path, hair_colour="brown")
    with pytest.raises(UserInputError, match="unknown key") as caught:
        load_profile(path)
    assert caught.value.key == "hair_colour"


def test_unknown_template_field_is_named(tmp_path):
    path = _write_profile(tmp_path, template="a 3d animated character, {character}, {outfit}")
    with pytest.raises(UserInputError, match=r"unknown template field \{outfit\}") as caught:
        load_profile(path)
    assert caught.value.key == "template" and caught.value.path == path


def test_template_without_the_character_is_refused(tmp_path):
    path = _write_profile(tmp_path, template="pixar {rendering}, {pose_expression}")
    with pytest.raises(UserInputError, match=r"must contain \{character\}"):
        load_profile(path)


def test_unbalanced_template_braces_are_a_clear_error(tmp_path):
    path = _write_profile(tmp_path, template="{character}, {rendering")
    with pytest.raises(UserInputError, match="malformed template"):
        load_profile(path)


def test_phrase_with_a_comma_is_refused(tmp_path):
    path = _write_profile(tmp_path, description=["brown eyes, curly hair"])
    with pytest.raises(UserInputError, match="comma-free") as caught:
        load_profile(path)
    assert caught.value.key == "description"


@pytest.mark.parametrize(("key", "value"), [("year", "2021"), ("year", True), ("name", ""),
                                            ("description", [1, 2]), ("description", [])])
def test_wrong_value_types_are_named(tmp_path, key, value):
    with pytest.raises(UserInputError) as caught:
        load_profile(_write_profile(tmp_path, **{key: value}))
    assert caught.value.key == key


def test_malformed_yaml_and_missing_file_name_the_file(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(UserInputError, match="malformed YAML") as caught:
        load_profile(broken)
    assert caught.value.path == broken
    with pytest.raises(UserInputError, match="not found"):
        load_profile(tmp_path / "nobody.yaml")
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(UserInputError, match="mapping"):
        load_profile(listed)
