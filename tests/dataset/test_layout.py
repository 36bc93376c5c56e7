from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.common.errors import UserInputError
from orchestrator.dataset import prepare_kohya_dataset, validate_kohya_dataset
from orchestrator.vision.synthetic import synthetic_scene

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def source(tmp_path) -> Path:
    folder = tmp_path / "captioned"
    folder.mkdir()
    for index in range(3):
        synthetic_scene(index, (64, 48)).save(folder / f"luca_{index:03d}.png")
        (folder / f"luca_{index:03d}.txt").write_text(f"luca, a boy, scene {index}\n")
    (folder / "notes.md").write_text("not part of the dataset")
    return folder


def _problems(report) -> list[tuple[str, str]]:
    return [(p.code, p.path.name) for p in report.problems]


def test_prepare_builds_the_kohya_layout_and_it_validates(source, tmp_path):
    prepared = prepare_kohya_dataset(source, tmp_path / "kohya", repeats=10, name="luca")
    assert prepared.folder == tmp_path / "kohya" / "10_luca"
    assert sorted(p.name for p in prepared.folder.iterdir()) == [
        "luca_000.png", "luca_000.txt", "luca_001.png", "luca_001.txt", "luca_002.png", "luca_002.txt"]
    assert [p.name for p in prepared.skipped] == ["notes.md"]
    report = validate_kohya_dataset(tmp_path / "kohya")
    assert report.ok and report.counts_line() == "3 images = 3 captions"
    assert (report.images_x_repeats, report.subsets[0].name, report.subsets[0].repeats) == (30, "luca", 10)
    assert validate_kohya_dataset(prepared.folder).ok  # the subset folder itself works too
    assert sorted(p.name for p in source.iterdir())[0] == "luca_000.png"  # source untouched


def test_prepare_refuses_to_mix_into_an_existing_subset(source, tmp_path):
    prepare_kohya_dataset(source, tmp_path / "kohya", repeats=10, name="luca")
    with pytest.raises(UserInputError, match="already has files"):
        prepare_kohya_dataset(source, tmp_path / "kohya", repeats=10, name="luca")
    (source / "luca_000.png").unlink()
    again = prepare_kohya_dataset(source, tmp_path / "kohya", repeats=10, name="luca", overwrite=True)
    assert again.images == 2 and not (again.folder / "luca_000.png").exists()


def test_prepare_rejects_bad_arguments(source, tmp_path):
    with pytest.raises(UserInputError, match="repeat must be"):
        prepare_kohya_dataset(source, tmp_path / "k", repeats=0, name="luca")
    with pytest.raises(UserInputError, match="invalid dataset name"):
        prepare_kohya_dataset(source, tmp_path / "k", repeats=1, name="a/b")
    synthetic_scene(9, (64, 48)).save(source / "luca_000.jpg")
    with pytest.raises(UserInputError, match="share a stem"):
        prepare_kohya_dataset(source, tmp_path / "k", repeats=1, name="luca")


def test_validate_finds_every_kind_of_problem(source, tmp_path):
    subset = prepare_kohya_dataset(source, tmp_path / "kohya", repeats=5, name="luca").folder
    (subset / "luca_001.txt").write_text("  \n")
    (subset / "luca_002.txt").unlink()
    (subset / "orphan.txt").write_text("caption of nothing")
    synthetic_scene(4, (64, 48)).save(subset / "luca_000.jpg")
    data = (subset / "luca_001.png").read_bytes()
    (subset / "broken.png").write_bytes(data[: len(data) // 2])
    (subset / "broken.txt").write_text("caption")
    (subset / "empty.png").write_bytes(b"")
    (subset / "empty.txt").write_text("caption")
    (subset / "luca_000_64x48_sd.npz").write_bytes(b"latent cache")
    report = validate_kohya_dataset(tmp_path / "kohya")
    assert not report.ok
    assert sorted(_problems(report)) == sorted([
        ("empty_caption", "luca_001.txt"), ("missing_caption", "luca_002.png"), ("orphan_caption", "orphan.txt"),
        ("duplicate_stem", "luca_000.jpg"), ("unreadable_image", "broken.png"), ("unreadable_image", "empty.png")])
    assert report.counts_line() == "6 images ≠ 5 captions"


def test_validate_without_layout_says_how_to_make_it(tmp_path):
    (tmp_path / "images").mkdir()
    report = validate_kohya_dataset(tmp_path / "images")
    assert _problems(report) == [("no_subset_folder", "images")]
    assert "dataset prepare" in report.problems[0].message
    assert _problems(validate_kohya_dataset(tmp_path / "absent")) == [("missing_folder", "absent")]


def test_cli_prepare_validate_and_exit_codes(source, tmp_path, capsys):
    assert main(["dataset", "prepare", str(source), "--out", str(tmp_path / "k"), "--repeat", "10", "--name",
                 "luca", "--validate"]) == 0
    assert "3 images = 3 captions" in capsys.readouterr().out
    (tmp_path / "k" / "10_luca" / "luca_001.txt").unlink()
    assert main(["dataset", "validate", str(tmp_path / "k")]) == 1
    assert "3 images ≠ 2 captions" in capsys.readouterr().out
    assert main(["dataset", "validate", str(tmp_path / "k"), "--json"]) == 1
    assert '"code": "missing_caption"' in capsys.readouterr().out


def test_shell_wrapper_takes_the_guide_flags(source, tmp_path):
    completed = subprocess.run(
        ["bash", str(REPO / "scripts" / "training" / "prepare_kohya_dataset.sh"), "--source-dir", str(source),
         "--output-dir", str(tmp_path / "kohya"), "--repeat", "7", "--name", "luca", "--validate"],
        capture_output=True, text=True, env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"})
    assert completed.returncode == 0, completed.stderr
    assert "3 images = 3 captions" in completed.stdout
    assert (tmp_path / "kohya" / "7_luca" / "luca_000.txt").is_file()
    bad = subprocess.run(["bash", str(REPO / "scripts" / "training" / "prepare_kohya_dataset.sh"), "--bogus"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr.lower()
