"""Result files and folders are either the old version or the complete new one."""

from __future__ import annotations

import json
import os
import stat

import pytest

from orchestrator.common.atomic import (
    atomic_folder,
    atomic_write_json,
    atomic_write_text,
    recover_interrupted_swap,
)


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


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_a_new_result_file_gets_the_mode_the_umask_gives_not_0600(tmp_path, umask):
    previous = os.umask(umask)
    try:
        path = atomic_write_text(tmp_path / "best.json", "{}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_a_rewritten_result_file_keeps_its_own_mode(tmp_path):
    path = atomic_write_text(tmp_path / "scores.json", "{}")
    path.chmod(0o640)
    atomic_write_text(path, '{"epoch": 1}')
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_swap_killed_between_its_renames_gets_the_old_folder_back(tmp_path):
    target = tmp_path / "10_luca"
    with atomic_folder(target) as staging:
        (staging / "a.png").write_bytes(b"first")
    # What a kill between the two renames leaves: the old folder moved aside, the new one never moved in.
    target.rename(tmp_path / ".10_luca.old")
    recover_interrupted_swap(target)
    assert sorted(p.name for p in target.iterdir()) == ["a.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["10_luca"]


def test_the_next_build_repairs_an_interrupted_swap_before_it_starts(tmp_path):
    target = tmp_path / "model"
    with atomic_folder(target) as staging:
        (staging / "weights").write_bytes(b"old")
    target.rename(tmp_path / ".model.old")
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as staging:
            raise RuntimeError("interrupted again")
    assert (target / "weights").read_bytes() == b"old"  # the result that existed is never lost
