"""caption_folder with the tiny random Qwen2-VL: files written, resume, crash safety, bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.captions.profile import load_profile
from orchestrator.captions.runner import caption_folder, plan_captions
from orchestrator.common.errors import UserInputError


def _captions(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.glob("*.txt"))}


def test_every_image_gets_a_template_caption_next_to_it(frames, luca, tiny_backend):
    report = caption_folder(frames, luca, backend=tiny_backend, batch_size=3, progress=False)
    captions = _captions(frames)
    assert sorted(captions) == [f"frame_{i:03d}.txt" for i in range(4)]
    assert sorted(report.written) == sorted(frames / name for name in captions)
    for text in captions.values():
        assert text.endswith("\n") and text.count("\n") == 1
        assert text.startswith("a 3d animated character, pixar ")
        assert f", {luca.character_text}, " in text and ", pixar film quality, " in text
    assert report.failures == [] and report.skipped_existing == []
    assert 0 < report.generate_seconds <= report.seconds
    assert not list(frames.glob(".*.tmp"))  # atomic writes leave no temp files


def test_batched_answers_equal_one_image_at_a_time(frames, luca, tiny_backend, tmp_path):
    one_by_one = tmp_path / "one"
    caption_folder(frames, luca, backend=tiny_backend, batch_size=1, progress=False, output_dir=one_by_one)
    batched = tmp_path / "batched"
    caption_folder(frames, luca, backend=tiny_backend, batch_size=4, progress=False, output_dir=batched)
    assert _captions(one_by_one) == _captions(batched)
    assert not list(frames.glob("*.txt"))  # --output-dir leaves the image folder untouched


def test_existing_captions_are_kept_unless_overwrite(frames, luca, tiny_backend):
    hand_written = frames / "frame_001.txt"
    hand_written.write_text("my own caption\n")
    os.utime(hand_written, (1_000_000, 1_000_000))
    report = caption_folder(frames, luca, backend=tiny_backend, batch_size=2, progress=False)
    assert hand_written.read_text() == "my own caption\n" and hand_written.stat().st_mtime == 1_000_000
    assert report.skipped_existing == [hand_written] and len(report.written) == 3

    again = caption_folder(frames, luca, backend=tiny_backend, progress=False)
    assert again.written == [] and len(again.skipped_existing) == 4

    redone = caption_folder(frames, luca, backend=tiny_backend, overwrite=True, progress=False)
    assert len(redone.written) == 4
    assert hand_written.read_text().startswith("a 3d animated character")


class _CrashOnSecondBatch:
    """The real tiny back-end, with the process 'dying' while the second batch is in flight."""

    name = "crashing"

    def __init__(self, backend):
        self.backend, self.calls = backend, 0

    def describe(self, images, prompt):
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return self.backend.describe(images, prompt)


def test_a_crash_loses_only_the_batch_in_flight_and_a_rerun_resumes(frames, luca, tiny_backend):
    existing = frames / "frame_003.txt"
    existing.write_text("old caption\n")
    with pytest.raises(KeyboardInterrupt):
        caption_folder(frames, luca, backend=_CrashOnSecondBatch(tiny_backend), batch_size=2,
                       overwrite=True, progress=False)
    assert sorted(_captions(frames)) == ["frame_000.txt", "frame_001.txt", "frame_003.txt"]
    assert existing.read_text() == "old caption\n"  # in the lost batch: the old one is intact
    assert not list(frames.glob(".*.tmp"))
    resumed = caption_folder(frames, luca, backend=tiny_backend, batch_size=2, progress=False)
    assert resumed.written == [frames / "frame_002.txt"]


def test_unreadable_image_is_reported_by_name_and_the_rest_are_captioned(frames, luca, tiny_backend):
    broken = frames / "frame_broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    truncated = frames / "frame_cut.jpg"
    from PIL import Image

    Image.new("RGB", (64, 64), (9, 9, 9)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:100])
    report = caption_folder(frames, luca, backend=tiny_backend, batch_size=4, progress=False)
    assert sorted(f.image for f in report.failures) == [broken, truncated]
    assert all(str(f.image) in f.reason and "unreadable image" in f.reason for f in report.failures)
    assert len(report.written) == 4
    assert not (frames / "frame_broken.txt").exists() and not (frames / "frame_cut.txt").exists()


def test_empty_and_missing_folders_are_clear_errors(tmp_path, luca, tiny_backend):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(UserInputError, match="no images") as caught:
        caption_folder(tmp_path, luca, backend=tiny_backend, progress=False)
    assert caught.value.path == tmp_path
    with pytest.raises(UserInputError, match="not found"):
        plan_captions(tmp_path / "missing")


def test_caption_file_that_is_a_directory_stops_before_any_work(frames, luca, tiny_backend):
    (frames / "frame_002.txt").mkdir()
    with pytest.raises(UserInputError, match="is a directory") as caught:
        caption_folder(frames, luca, backend=tiny_backend, progress=False)
    assert caught.value.path == frames / "frame_002.txt"
    assert [p.name for p in frames.glob("*.txt")] == ["frame_002.txt"]  # only the directory itself


def test_two_images_with_one_stem_are_refused(frames, luca, tiny_backend, make_images):
    make_images(frames, 1, suffix=".jpg")
    with pytest.raises(UserInputError, match="share the caption file frame_000.txt"):
        plan_captions(frames)


def test_output_dir_that_is_a_file_is_refused(frames, tmp_path):
    not_a_folder = tmp_path / "captions"
    not_a_folder.write_text("")
    with pytest.raises(UserInputError, match="output folder is a file") as caught:
        plan_captions(frames, output_dir=not_a_folder)
    assert caught.value.path == not_a_folder


def test_bad_batch_size_is_refused(frames, luca, tiny_backend):
    with pytest.raises(UserInputError, match="batch size"):
        caption_folder(frames, luca, backend=tiny_backend, batch_size=0, progress=False)


def test_profile_may_be_given_as_a_path(frames, luca_path, luca, tiny_backend):
    report = caption_folder(frames, luca_path, backend=tiny_backend, batch_size=4, progress=False,
                            check_tokens=False)
    assert len(report.written) == 4
    assert all(luca.character_text in path.read_text() for path in report.written)


def test_token_check_flags_captions_past_the_clip_window(frames, tiny_backend, tmp_path, luca_path):
    long_profile = tmp_path / "long.yaml"
    text = luca_path.read_text().replace(
        "description:\n", "description:\n" + "".join(f"  - extra identity detail number {i}\n" for i in range(12))
    )
    long_profile.write_text(text)
    short = caption_folder(frames, load_profile(luca_path), backend=tiny_backend, batch_size=4,
                           progress=False, output_dir=tmp_path / "short")
    assert short.token_check is not None and short.token_check.too_long == ()
    assert len(short.token_check.counts) == 4 and 20 < short.token_check.longest <= 75
    long = caption_folder(frames, load_profile(long_profile), backend=tiny_backend, batch_size=4,
                          progress=False, output_dir=tmp_path / "long")
    assert long.token_check is not None
    assert sorted(long.token_check.too_long) == sorted(long.written) and long.token_check.shortest > 75


def test_progress_bar_shows_images_per_second(frames, luca, tiny_backend, capsys):
    caption_folder(frames, luca, backend=tiny_backend, batch_size=2, progress=True, check_tokens=False)
    err = capsys.readouterr().err
    assert "captioning" in err and "4/4" in err and "images/s" in err


def test_an_empty_caption_is_captioned_again_on_resume(frames, luca, tiny_backend):
    # issue 14 #11: a back-end that returned nothing left an empty file; a rerun must not count it as done.
    caption_folder(frames, luca, backend=tiny_backend, batch_size=2, progress=False)
    empty, blank = frames / "frame_000.txt", frames / "frame_002.txt"
    empty.write_text("")
    blank.write_text(" \n\t\n")
    resumed = caption_folder(frames, luca, backend=tiny_backend, batch_size=2, progress=False)
    assert sorted(resumed.written) == [empty, blank]
    assert empty.read_text().startswith("a 3d animated character") and blank.read_text().strip()
    assert len(resumed.skipped_existing) == 2
