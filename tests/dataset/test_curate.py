from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.common.errors import UserInputError
from orchestrator.common.hashing import file_sha256
from orchestrator.dataset.config import CurationConfig, IdentitySettings
from orchestrator.dataset.curate import curate
from orchestrator.dataset.records import read_manifest

# With the random tiny model a resized copy of a reference scores ~1.0 and unrelated scenes < 0.97.
CONFIG = replace(CurationConfig(), identity=IdentitySettings(threshold=0.985, rule="max", borderline_margin=0.0))


def _tree_hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): file_sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def _by_name(records):
    return {Path(r.relative_path).name: r for r in records}


def test_every_image_file_gets_one_manifest_line_with_its_verdict(frame_set, tiny_encoder, tmp_path):
    before = _tree_hashes(frame_set.frames)
    result = curate(frame_set.frames, frame_set.references, tmp_path / "out", CONFIG, encoder=tiny_encoder,
                    cache_dir=tmp_path / "cache", progress=False)
    records = read_manifest(tmp_path / "out" / "manifest.jsonl")
    images = [name for name in before if not name.endswith(".txt")]
    assert [r.relative_path for r in records] == images  # every image file, in order
    assert result.summary["ignored"]["files"] == ["bad/notes.txt"]  # not an image file: no frame at all
    assert _tree_hashes(frame_set.frames) == before  # inputs untouched
    by_name = _by_name(records)

    for name, reason in frame_set.bad.items():
        if name == "notes.txt":
            assert name not in by_name
            continue
        record = by_name[name]
        if reason is None:  # converted fine, then rejected as too small (320x240) like any small frame
            assert (record.stage, record.reasons[0]["code"]) == ("quality", "too_small"), name
        else:
            assert (record.verdict, record.stage, record.reasons[0]["code"]) == ("rejected", "decode", reason)
    assert by_name["0020_blurred.png"].reasons[0]["code"] == "blurry"
    assert by_name["0020_blurred.png"].reasons[0]["value"] < 40
    assert {r["code"] for r in by_name["0021_black.png"].reasons} >= {"blank", "too_dark"}
    assert by_name["0022_tiny.png"].reasons[0]["code"] == "too_small"

    for index in range(4):  # the sharper JPEG of each pair is kept, the resized copy names it
        kept, dropped = by_name[f"{index:04d}_char_sharp.jpg"], by_name[f"{index:04d}_char.png"]
        assert kept.verdict == "accepted" and kept.identity_score > 0.999
        assert (dropped.stage, dropped.duplicate_of) == ("dedup", kept.relative_path)
    for index in range(6):
        other = by_name[f"{10 + index:04d}_other.png"]
        assert (other.verdict, other.stage) == ("rejected", "identity") and other.identity_score < 0.985

    counts = result.summary["counts"]
    assert counts == {"frames": len(images), "after_decode": len(images) - 5, "after_quality": 14,
                      "after_dedup": 10, "after_identity": 4, "borderline": 0}
    assert result.summary["funnel"] == f"{len(images)} → 14 after quality → 10 after dedup → 4 after identity"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["rejections"]["dedup"] == {"near_duplicate": 4}
    assert "data:image/jpeg;base64," in (tmp_path / "out" / "review.html").read_text()


def test_rerun_with_another_threshold_recomputes_nothing(frame_set, tiny_encoder, tmp_path, monkeypatch):
    curate(frame_set.frames, frame_set.references, tmp_path / "out", CONFIG, encoder=tiny_encoder,
           cache_dir=tmp_path / "cache", progress=False)
    import orchestrator.dataset.analysis as analysis

    decoded = []
    real_open = analysis.open_image_rgb
    monkeypatch.setattr(analysis, "open_image_rgb", lambda path, **kw: decoded.append(path) or real_open(path, **kw))
    looser = replace(CONFIG, identity=IdentitySettings(threshold=0.5, rule="max"))
    result = curate(frame_set.frames, frame_set.references, tmp_path / "out2", looser, encoder=tiny_encoder,
                    cache_dir=tmp_path / "cache", progress=False)
    assert decoded == []
    assert result.summary["clip"]["embedded"] == 0 and result.summary["clip"]["reused_from_cache"] == 14
    assert result.summary["counts"]["after_identity"] == 10


def test_borderline_frames_are_marked_between_margin_and_threshold(frame_set, tiny_encoder, tmp_path):
    scores = {}
    first = curate(frame_set.frames, frame_set.references, tmp_path / "o1", CONFIG, encoder=tiny_encoder,
                   cache_dir=tmp_path / "cache", progress=False)
    scores = sorted(r.identity_score for r in first.records if r.stage == "identity")
    margin_config = replace(CONFIG, identity=IdentitySettings(threshold=0.985, rule="max",
                                                              borderline_margin=0.985 - scores[-2] + 1e-6))
    second = curate(frame_set.frames, frame_set.references, tmp_path / "o2", margin_config, encoder=tiny_encoder,
                    cache_dir=tmp_path / "cache", progress=False)
    borderline = [r for r in second.records if r.verdict == "borderline"]
    assert sorted(r.identity_score for r in borderline) == scores[-2:]
    assert second.summary["counts"]["borderline"] == 2


def test_missing_or_empty_references_stop_before_any_work(frame_set, tiny_encoder, tmp_path):
    with pytest.raises(UserInputError, match="reference folder not found"):
        curate(frame_set.frames, tmp_path / "nope", tmp_path / "out", CONFIG, encoder=tiny_encoder,
               cache_dir=tmp_path / "cache", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="reference folder is empty"):
        curate(frame_set.frames, tmp_path / "empty", tmp_path / "out", CONFIG, encoder=tiny_encoder,
               cache_dir=tmp_path / "cache", progress=False)
    with pytest.raises(UserInputError, match="frames folder not found"):
        curate(tmp_path / "none", frame_set.references, tmp_path / "out", CONFIG, encoder=tiny_encoder,
               cache_dir=tmp_path / "cache", progress=False)
    assert not (tmp_path / "out").exists()


def test_corrupt_reference_is_skipped_and_reported_but_all_corrupt_is_an_error(frame_set, tiny_encoder, tmp_path):
    (frame_set.references / "ref_9_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    result = curate(frame_set.frames, frame_set.references, tmp_path / "out", CONFIG, encoder=tiny_encoder,
                    cache_dir=tmp_path / "cache", progress=False)
    assert result.summary["references"]["used"] == 4
    assert [Path(s["path"]).name for s in result.summary["references"]["skipped"]] == ["ref_9_broken.png"]
    assert result.summary["counts"]["after_identity"] == 4

    only_bad = tmp_path / "bad_refs"
    only_bad.mkdir()
    (only_bad / "a.jpg").write_bytes(b"")
    with pytest.raises(UserInputError, match="none of the reference images can be read"):
        curate(frame_set.frames, only_bad, tmp_path / "out2", CONFIG, encoder=tiny_encoder,
               cache_dir=tmp_path / "cache", progress=False)


def test_output_folder_inside_frames_folder_is_not_curated_again(frame_set, tiny_encoder, tmp_path):
    out = frame_set.frames / "curated"
    first = curate(frame_set.frames, frame_set.references, out, CONFIG, encoder=tiny_encoder,
                   cache_dir=tmp_path / "cache", progress=False)
    second = curate(frame_set.frames, frame_set.references, out, CONFIG, encoder=tiny_encoder,
                    cache_dir=tmp_path / "cache", progress=False)
    assert second.summary["counts"] == first.summary["counts"]


def test_cli_runs_the_real_model_path_and_reports_errors(frame_set, tmp_path, capsys):
    argv = ["curate", str(frame_set.frames), "--references", str(frame_set.references), "--out",
            str(tmp_path / "out"), "--clip-model", "tiny-clip", "--clip-weights", "random", "--rule", "max",
            "--threshold", "0.985", "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert main(argv) == 0
    output = capsys.readouterr().out
    assert "→ 4 after identity" in output
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"manifest.jsonl", "summary.json", "review.html"}
    assert main([*argv[:3], str(tmp_path / "missing"), *argv[4:]]) == 2
    assert "reference folder not found" in capsys.readouterr().err


def test_an_extract_folder_curates_its_frames_and_ignores_its_manifest_files(tmp_path, tiny_encoder, capsys):
    from orchestrator.extract import ExtractConfig, extract_videos
    from orchestrator.toy import generate_toy_film

    film = generate_toy_film(tmp_path / "film")
    frames = tmp_path / "frames"
    extracted = extract_videos([film.video], frames, ExtractConfig(per_shot=1), progress=False)
    (frames / "notes.md").write_text("shots to look at again", encoding="utf-8")
    references = tmp_path / "refs"
    references.mkdir()
    (references / "ref.png").write_bytes((frames / extracted.videos[0].frames[0]["file"]).read_bytes())
    (references / "README.txt").write_text("approved images of the hero", encoding="utf-8")
    result = curate(frames, references, tmp_path / "out", CONFIG, encoder=tiny_encoder,
                    cache_dir=tmp_path / "cache", progress=False)
    assert result.summary["counts"]["frames"] == extracted.frames  # the funnel counts frames, nothing else
    assert {r.relative_path for r in result.records} == {line["file"] for line in extracted.videos[0].frames}
    assert result.summary["counts"]["after_decode"] == extracted.frames
    assert result.summary["ignored"]["files"] == ["dropped.jsonl", "manifest.jsonl", "notes.md", "summary.json"]
    assert result.summary["references"] == {"used": 1, "skipped": []}

    assert main(["curate", str(frames), "--references", str(references), "--out", str(tmp_path / "out2"),
                 "--clip-model", "tiny-clip", "--clip-weights", "random", "--cache-dir", str(tmp_path / "cache"),
                 "--no-progress"]) == 0
    assert "ignored 4 non-image file(s): dropped.jsonl, manifest.jsonl, notes.md, ..." in capsys.readouterr().out
