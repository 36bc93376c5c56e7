"""`extract`: shots, the sharpest usable frames spread across each, drop reasons, manifest, resume, bad files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from orchestrator.cli import main
from orchestrator.extract import (
    ExtractConfig,
    FrameJudge,
    SpreadSampler,
    VideoError,
    extract_videos,
    probe_video,
    read_manifest,
)


@pytest.fixture(scope="module")
def extracted(toy_film, tmp_path_factory):
    out = tmp_path_factory.mktemp("frames")
    return extract_videos([toy_film.video], out, ExtractConfig(per_shot=3), progress=False)


def _truth_shot(truth: dict, frame: int) -> dict:
    return next(s for s in truth["shots"] if s["first"] <= frame <= s["last"])


def test_shots_start_at_the_films_cuts(extracted, film_truth):
    starts = [s["first"] for s in extracted.videos[0].shots]
    assert len(starts) == len(film_truth["shots"])
    for shot, start in zip(film_truth["shots"], starts, strict=True):
        previous = next((s for s in film_truth["shots"] if s["last"] == shot["first"] - 1), None)
        # a cut may be found where the fade reaches black, a few frames before the next shot's first
        earliest = previous["fade_from"] if previous and previous["fade_from"] is not None else shot["first"]
        assert earliest <= start <= shot["first"], (shot, start)


def test_kept_frames_are_never_black_fading_or_frozen(extracted, film_truth):
    kept = [line["frame"] for line in extracted.videos[0].frames]
    assert kept
    for frame in kept:
        shot = _truth_shot(film_truth, frame)
        if shot["fade_from"] is not None:
            assert frame < shot["fade_from"], f"frame {frame} is in the fade of shot {shot['shot']}"
        if shot["frozen_from"] is not None:
            assert frame < shot["frozen_from"], f"frame {frame} repeats a frozen frame"
    reasons = extracted.videos[0].drop_counts
    assert set(reasons) == {"black", "fade", "frozen"}
    frozen = next(s for s in film_truth["shots"] if s["frozen_from"] is not None)
    assert reasons["frozen"] == frozen["last"] - frozen["frozen_from"] + 1


def test_each_shot_gives_spread_frames_never_from_one_moment(extracted, toy_film):
    video = extracted.videos[0]
    gap = round(ExtractConfig().min_gap_seconds * toy_film.spec.fps)
    for shot in video.shots:
        frames = [line["frame"] for line in video.frames if line["shot"] == shot["shot"]]
        assert 1 <= len(frames) <= 3
        assert all(shot["first"] <= f <= shot["last"] for f in frames)
        assert all(b - a >= gap for a, b in zip(frames, frames[1:], strict=False))
    assert any(s["kept"] == 3 for s in video.shots), "a clean 1.5 s shot has room for three frames 0.5 s apart"


def test_manifest_names_video_shot_frame_and_time_code(extracted, toy_film):
    lines = read_manifest(extracted.out_dir)
    assert len(lines) == extracted.frames
    for line in lines:
        assert (extracted.out_dir / line["file"]).is_file()
        assert line["video"] == str(toy_film.video)
        seconds = line["frame"] / toy_film.spec.fps
        hours, rest = divmod(seconds, 3600)
        assert line["time"] == f"{int(hours):02d}:{int(rest // 60):02d}:{rest % 60:06.3f}"
    summary = json.loads((extracted.out_dir / "summary.json").read_text())
    assert summary["summary"] == f"1 film → {extracted.shots} shots → {extracted.frames} frames"
    dropped = [json.loads(line) for line in (extracted.out_dir / "dropped.jsonl").read_text().splitlines()]
    assert {run["reason"] for run in dropped} == {"black", "fade", "frozen"}


def test_rerun_skips_a_finished_video_and_redoes_a_changed_one(toy_film, tmp_path):
    video = tmp_path / "film.avi"
    shutil.copy(toy_film.video, video)
    first = extract_videos([video], tmp_path / "frames", progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "frames").glob("*.png")}
    again = extract_videos([video], tmp_path / "frames", progress=False)
    assert again.videos[0].skipped and again.frames == first.frames
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "frames").glob("*.png")} == stamps
    fewer = extract_videos([video], tmp_path / "frames", ExtractConfig(per_shot=1), progress=False,
                           overwrite=True)
    assert not fewer.videos[0].skipped and fewer.frames == fewer.shots
    assert len(list((tmp_path / "frames").glob("*.png"))) == fewer.frames  # the old frames are gone


def test_an_interrupted_video_is_redone_from_scratch(toy_film, tmp_path):
    out = tmp_path / "frames"
    out.mkdir()
    (out / "toy_film_s0009_f000999.png").write_bytes(b"half written")  # left by a killed run
    result = extract_videos([toy_film.video], out, progress=False)
    assert not (out / "toy_film_s0009_f000999.png").exists()
    assert len(list(out.glob("*.png"))) == result.frames


def _broken_videos(toy_film, folder: Path) -> dict[str, Path]:
    data = Path(toy_film.video).read_bytes()
    folder.mkdir(parents=True, exist_ok=True)
    files = {"text": folder / "notes.mp4", "truncated": folder / "cut.avi", "codec": folder / "codec.avi",
             "empty": folder / "empty.avi"}
    files["text"].write_text("not a video")
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["codec"].write_bytes(data.replace(b"MJPG", b"ZZZZ"))  # a codec nobody decodes
    files["empty"].write_bytes(b"")
    return files


@pytest.mark.parametrize("kind", ["text", "truncated", "codec", "empty"])
def test_a_bad_file_is_named_in_a_clear_error(toy_film, tmp_path, kind):
    path = _broken_videos(toy_film, tmp_path / "in")[kind]
    with pytest.raises(VideoError, match=str(path)):
        info = probe_video(path)
        from orchestrator.extract import read_frames

        for _ in read_frames(info):
            pass


def test_cli_goes_on_past_a_bad_file_and_exits_non_zero(toy_film, tmp_path, capsys):
    broken = _broken_videos(toy_film, tmp_path / "in")
    out = tmp_path / "frames"
    code = main(["extract", str(broken["truncated"]), str(toy_film.video), str(broken["text"]), "--out", str(out),
                 "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 1
    assert f"error: {broken['truncated']}: truncated" in printed and f"error: {broken['text']}" in printed
    assert "1 film → 6 shots →" in printed
    assert {line["video"] for line in read_manifest(out)} == {str(toy_film.video)}
    assert not list(out.glob("cut_*.png")), "a truncated video leaves no partial frames"


def test_judge_names_black_flat_frozen_and_fade():
    judge = FrameJudge()
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 255, (64, 64), dtype=np.uint8)
    frames = [picture, picture.copy(), np.full((64, 64), 120, np.uint8), np.zeros((64, 64), np.uint8)]
    fade = [np.clip(picture * level, 0, 255).astype(np.uint8) for level in (1.0, 0.8, 0.6, 0.4)]
    verdicts = [judge.push(frame, index) for index, frame in enumerate([*frames, *fade])]
    verdicts.append(judge.flush())
    reasons = {payload: measure.reason for payload, measure in filter(None, verdicts)}
    assert reasons[0] is None and reasons[1] == "frozen" and reasons[2] == "flat" and reasons[3] == "black"
    assert reasons[5] == "fade" and reasons[6] == "fade"


def test_sampler_holds_a_bounded_number_of_frames_whatever_the_shot_length():
    sampler = SpreadSampler(0, 3, min_gap=12)
    rng = np.random.default_rng(1)
    largest = 0
    for frame in range(20_000):
        sampler.offer(frame, float(rng.random()), image=frame)
        largest = max(largest, len(sampler.slots))
    assert largest <= 4 * 3 + 1
    picks = [c.frame for c in sampler.picks()]
    assert len(picks) == 3
    assert picks[0] < 20_000 / 3 <= picks[1] < 2 * 20_000 / 3 <= picks[2]


def test_decoding_ahead_gives_the_same_frames_raises_the_same_errors_and_stops_with_its_reader(toy_film, tmp_path):
    import threading

    from orchestrator.extract import read_frames, read_frames_ahead

    info = probe_video(toy_film.video)
    ahead = list(read_frames_ahead(info, depth=3))
    plain = list(read_frames(info))
    assert [n for n, _ in ahead] == [n for n, _ in plain]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(ahead, plain, strict=True))

    truncated = _broken_videos(toy_film, tmp_path / "in")["truncated"]
    with pytest.raises(VideoError, match="truncated"):
        for _ in read_frames_ahead(probe_video(truncated)):
            pass

    frames = read_frames_ahead(info, depth=2)
    next(frames)
    frames.close()  # the reader stops early: the decoding thread ends with it
    assert not [t for t in threading.enumerate() if t.name.startswith("decode ")]
