"""Result files and folders are either the old version or the complete new one."""

from __future__ import annotations

import json

import pytest

from orchestrator.common.atomic import atomic_folder, atomic_write_json


def test_a_failed_json_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "scores.json"
    atomic_write_json(target, {"epoch": 2})
    with pytest.raises(ValueError):
        atomic_write_json(target, {"loss": float("nan")})  # NaN is not JSON: refused before any rename
    assert json.loads(target.read_text()) == {"epoch": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["scores.json"]


def test_folder_is_swapped_in_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "10_luca"
    with atomic_folder(target) as staging:
        (staging / "a.png").write_bytes(b"first")
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as staging:
            (staging / "b.png").write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in target.iterdir()) == ["a.png"]
    with atomic_folder(target) as staging:
        (staging / "c.png").write_bytes(b"second")
    assert sorted(p.name for p in target.iterdir()) == ["c.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["10_luca"]  # no staging or old copies left
