from __future__ import annotations

import pytest

from orchestrator.common.errors import UserInputError
from orchestrator.common.tomlfile import read_toml


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "evaluation config not found"),
    (lambda p: p.mkdir(), "evaluation config is not a file"),
    (lambda p: p.write_text("[a]\nb = = 1\n"), "malformed TOML"),
    (lambda p: p.write_bytes(b"\xff\xfe\x00bad"), "evaluation config"),
])
def test_every_failure_names_the_file_and_the_problem(tmp_path, make, message):
    path = tmp_path / "eval.toml"
    make(path)
    with pytest.raises(UserInputError) as caught:
        read_toml(path, what="evaluation config")
    assert str(path) in str(caught.value) and message in str(caught.value)
