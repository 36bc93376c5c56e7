"""Shots, then the sharpest usable frames of each shot, from one or more video files, in one decoding pass.

Each frame is decoded once, in a thread a few frames ahead (:func:`read_frames_ahead`). A reduced copy (every k-th pixel, about ``analysis_width`` wide) goes to
PySceneDetect's ``ContentDetector`` for the cuts and to :class:`FrameJudge` for sharpness and the drop
reasons; only the few full-resolution candidates a :class:`SpreadSampler` holds stay in memory, so memory
does not grow with the film's length. Kept frames are encoded and written by a second thread, at most
``MAX_PENDING_WRITES`` behind.

Output, in ``FRAMES``: ``<video>_s<shot>_f<frame>.png`` for every kept frame, ``manifest.jsonl`` (one line
per kept frame: video, shot, frame number, time code, sharpness, file), ``dropped.jsonl`` (runs of dropped
frames with their reason), ``summary.json``. ``FRAMES/.extract/<key>.json`` records which film owns a key's
frames (``_state``): a rerun skips a finished film (same file size, modification time and settings), redoes
an unfinished one, gives a second film of the same name frames of its own, and replaces a finished film's
frames only with ``overwrite``.
"""

from __future__ import annotations

import json
import os
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.common.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from orchestrator.common.errors import UserInputError
from orchestrator.common.file_lock import FileLock
from orchestrator.common.manifest import claim_stage_folder
from orchestrator.common.numbers import number_problem
from orchestrator.extract import _state
from orchestrator.extract._judge import FrameJudge, JudgeConfig
from orchestrator.extract._sampler import Candidate, SpreadSampler
from orchestrator.extract._video import VideoError, VideoInfo, probe_video, read_frames_ahead

MANIFEST_NAME = "manifest.jsonl"
DROPPED_NAME = "dropped.jsonl"
SUMMARY_NAME = "summary.json"
#: Kept frames waiting for the writer thread; past this the decoding side waits (bounded memory).
MAX_PENDING_WRITES = 8


@dataclass(frozen=True)
class ExtractConfig:
    per_shot: int = 3
    analysis_width: int = 256  # cuts and measures run on a copy about this wide
    shot_threshold: float = 27.0  # ContentDetector's threshold (its default)
    min_shot_seconds: float = 0.5
    min_gap_seconds: float = 0.5  # two kept frames of a shot are at least this far apart
    judge: JudgeConfig = field(default_factory=JudgeConfig)

    def __post_init__(self) -> None:
        if self.per_shot < 1:
            raise ValueError("per_shot must be >= 1")
        if self.analysis_width < 16:
            raise ValueError("analysis_width must be >= 16 px")
        for name in ("shot_threshold", "min_shot_seconds", "min_gap_seconds"):
            problem = number_problem(getattr(self, name), low=0)  # a NaN would only fail at summary.json
            if problem is not None:
                raise ValueError(f"{name} {problem}")


@dataclass
class VideoResult:
    video: str  # the file name as given
    key: str  # the file-name prefix of its frames
    fps: float
    frames_decoded: int
    shots: list[dict[str, Any]]
    frames: list[dict[str, Any]]  # manifest lines
    dropped: list[dict[str, Any]]  # runs: shot, first, last, reason
    skipped: bool = False  # done by an earlier run

    @property
    def drop_counts(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for run in self.dropped:
            counts[run["reason"]] += run["last"] - run["first"] + 1
        return dict(sorted(counts.items()))


@dataclass
class ExtractResult:
    out_dir: Path
    videos: list[VideoResult]
    errors: list[str]

    @property
    def shots(self) -> int:
        return sum(len(v.shots) for v in self.videos)

    @property
    def frames(self) -> int:
        return sum(len(v.frames) for v in self.videos)

    def summary_line(self) -> str:
        count = len(self.videos)
        return f"{count:,} film{'s' if count != 1 else ''} → {self.shots:,} shots → {self.frames:,} frames"


def _timecode(frame: int, fps: float) -> str:
    from scenedetect import FrameTimecode

    return FrameTimecode(frame, fps).get_timecode()


class _ShotWriter:
    """Turns finished shots into image files and manifest lines. PNGs are encoded and written by one
    background thread (OpenCV releases the GIL while it encodes); :meth:`close` waits for them."""

    def __init__(self, info: VideoInfo, key: str, out_dir: Path) -> None:
        self.info, self.key, self.out_dir = info, key, out_dir
        self.shots: list[dict[str, Any]] = []
        self.frames: list[dict[str, Any]] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frame-writer")
        self._pending: deque[Future[None]] = deque()

    def finish(self, sampler: SpreadSampler, end_frame: int) -> None:
        if end_frame < sampler.start:
            return
        number = len(self.shots) + 1
        kept = sampler.picks()
        for candidate in kept:
            self._write(number, candidate)
        self.shots.append({"shot": number, "first": sampler.start, "last": end_frame,
                           "start": _timecode(sampler.start, self.info.fps),
                           "end": _timecode(end_frame, self.info.fps), "kept": len(kept)})

    def _write(self, shot: int, candidate: Candidate) -> None:
        name = f"{self.key}_s{shot:04d}_f{candidate.frame:06d}.png"
        self._pending.append(self._pool.submit(self._encode, name, candidate.frame, candidate.image))
        while len(self._pending) > MAX_PENDING_WRITES:
            self._pending.popleft().result()
        height, width = candidate.image.shape[:2]
        self.frames.append({"file": name, "video": str(self.info.path), "shot": shot, "frame": candidate.frame,
                            "time": _timecode(candidate.frame, self.info.fps),
                            "seconds": round(candidate.frame / self.info.fps, 3),
                            "sharpness": round(candidate.sharpness, 2), "width": width, "height": height})

    def _encode(self, name: str, frame: int, image: Any) -> None:
        import cv2

        ok, encoded = cv2.imencode(".png", image)
        if not ok:
            raise VideoError(f"could not encode frame {frame} as PNG", path=self.info.path)
        atomic_write_bytes(self.out_dir / name, encoded.tobytes())

    def close(self, *, failed: bool = False) -> None:
        """Wait for every write; raise the first write's error (unless the video already ``failed``)."""
        try:
            while self._pending:
                future = self._pending.popleft()
                if failed:
                    future.exception()
                else:
                    future.result()
        finally:
            self._pool.shutdown(wait=True)


class _DropRuns:
    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []

    def add(self, shot: int, frame: int, reason: str) -> None:
        last = self.runs[-1] if self.runs else None
        if last and last["reason"] == reason and last["shot"] == shot and last["last"] == frame - 1:
            last["last"] = frame
        else:
            self.runs.append({"shot": shot, "first": frame, "last": frame, "reason": reason})


def extract_video(info: VideoInfo, out_dir: Path, key: str, config: ExtractConfig, *,
                  on_frame: Callable[[int], None] | None = None) -> VideoResult:
    """Decode ``info`` once and write its kept frames into ``out_dir``; raises :class:`VideoError`."""
    from scenedetect import ContentDetector

    stride = max(1, round(info.width / config.analysis_width))
    min_gap = max(1, round(config.min_gap_seconds * info.fps))
    detector = ContentDetector(threshold=config.shot_threshold,
                               min_scene_len=max(1, round(config.min_shot_seconds * info.fps)))
    judge = FrameJudge(config.judge)
    writer = _ShotWriter(info, key, out_dir)
    drops = _DropRuns()
    sampler = SpreadSampler(0, config.per_shot, min_gap=min_gap)

    def cut_at(frame: int) -> None:
        nonlocal sampler
        if frame <= sampler.start:
            return
        later = sampler.split_at(frame)
        for run in drops.runs:  # drops already recorded past the cut belong to the next shot
            if run["first"] >= frame:
                run["shot"] += 1
        writer.finish(sampler, frame - 1)
        sampler = later

    def judged(verdict: tuple[Any, Any] | None) -> None:
        if verdict is None:
            return
        (number, frame), measure = verdict
        if measure.reason is not None:
            drops.add(len(writer.shots) + 1, number, measure.reason)
        else:
            sampler.offer(number, measure.sharpness, frame)

    try:
        last = _analyse(info, config, stride, detector, judge, cut_at, judged, on_frame)
        writer.finish(sampler, last)
    except BaseException:
        writer.close(failed=True)  # nothing is written after the caller clears the partial frames
        raise
    writer.close()
    return VideoResult(video=str(info.path), key=key, fps=info.fps, frames_decoded=last + 1, shots=writer.shots,
                       frames=writer.frames, dropped=drops.runs)


def _analyse(info: VideoInfo, config: ExtractConfig, stride: int, detector: Any, judge: FrameJudge,
             cut_at: Callable[[int], None], judged: Callable[[Any], None],
             on_frame: Callable[[int], None] | None) -> int:
    """Feed every frame to the judge and the cut detector; the number of the last frame."""
    import cv2
    from scenedetect import FrameTimecode

    last = -1
    size = (max(1, info.width // stride), max(1, info.height // stride))
    for number, frame in read_frames_ahead(info):
        # Every stride-th pixel, as one contiguous array (nearest-neighbour resize is the fastest way to it).
        small = cv2.resize(frame, size, interpolation=cv2.INTER_NEAREST) if stride > 1 else frame
        # The judge answers for the previous frame, which belongs to the shot before any cut at this one.
        judged(judge.push(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (number, frame)))
        for cut in detector.process_frame(FrameTimecode(number, info.fps), small):
            cut_at(cut.frame_num)
        last = number
        if on_frame is not None:
            on_frame(number)
    for cut in detector.post_process(FrameTimecode(last, info.fps)):
        cut_at(cut.frame_num)
    judged(judge.flush())
    return last


def _fingerprint(path: Path, config: ExtractConfig) -> dict[str, Any]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "config": asdict(config)}


def _skipped(plan: _state.Plan) -> VideoResult:
    assert plan.done is not None
    result = VideoResult(**plan.done[_state.RESULT_KEY])
    result.skipped = True
    return result


def extract_videos(videos: Sequence[str | Path], out_dir: str | Path, config: ExtractConfig | None = None, *,
                   progress: bool = True, overwrite: bool = False) -> ExtractResult:
    """Extract every video into ``out_dir``; a video that fails is reported in ``errors``, the others go on.

    Frames an earlier call made are never deleted, except a film's own when ``overwrite`` (see ``_state``)."""
    config = config or ExtractConfig()
    out_dir = claim_stage_folder(out_dir, "extract")
    # One film named twice (or by two routes) is one film, not two that fight over one key.
    firsts: dict[Path, Path] = {}
    for video in videos:
        firsts.setdefault(Path(video).resolve(), Path(video))
    paths = list(firsts.values())
    errors: list[str] = []
    infos: list[tuple[Path, VideoInfo]] = []
    for path in paths:
        try:
            infos.append((path, probe_video(path)))
        except VideoError as error:
            if len(paths) == 1:
                # Nothing was read: refuse with the reason rather than leave an empty frames folder behind.
                raise
            errors.append(str(error))
    if paths and not infos:
        raise UserInputError(f"none of the {len(paths)} videos can be read: " + "; ".join(errors))
    # The folder's lock before its first write; the plan refuses before anything is written.
    with FileLock(out_dir / _state.LOCK_NAME, holder=f"extract (pid {os.getpid()})"):
        plans = _state.plan_videos(out_dir, [path for path, _ in infos],
                                   [_fingerprint(path, config) for path, _ in infos], overwrite=overwrite)
        return _extract_planned(out_dir, plans, [info for _, info in infos], config, errors, progress=progress)


def _extract_planned(out_dir: Path, plans: list[_state.Plan], infos: list[VideoInfo], config: ExtractConfig,
                     errors: list[str], *, progress: bool) -> ExtractResult:
    from orchestrator.common.progress import progress_bar

    results: list[VideoResult] = []
    total = sum(info.frame_count for info in infos) or None
    bar = progress_bar(unit="frames") if progress else None
    task = bar.add_task("extract", total=total, rate="") if bar else None
    if bar:
        bar.start()
    try:
        for plan, info in zip(plans, infos, strict=True):
            if plan.done is not None:
                results.append(_skipped(plan))
                if bar:
                    bar.advance(task, info.frame_count)
                continue
            _state.clear_frames(out_dir, plan.key)  # this film's own partial (or, with overwrite, old) frames
            state_file = _state.claim(out_dir, plan)
            advance = _progress_callback(bar, task)
            try:
                result = extract_video(info, out_dir, plan.key, config, on_frame=advance)
            except VideoError as error:
                _state.clear_frames(out_dir, plan.key)
                errors.append(str(error) + "; its partial frames were removed")
                continue
            _state.finish(state_file, plan, asdict(result))
            results.append(result)
    finally:
        if bar:
            bar.stop()
    _write_outputs(out_dir, results, errors)
    return ExtractResult(out_dir=out_dir, videos=results, errors=errors)


def _progress_callback(bar: Any, task: Any) -> Callable[[int], None] | None:
    if bar is None:
        return None
    every = 25

    def advance(number: int) -> None:
        if (number + 1) % every == 0:
            bar.advance(task, every)
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:.0f} frames/s" if speed else "")
    return advance


def _write_outputs(out_dir: Path, results: list[VideoResult], errors: list[str]) -> None:
    """Rebuild the manifest from every finished video in the folder (this run's and earlier runs')."""
    out_dir.mkdir(parents=True, exist_ok=True)
    by_key = {r.key: r for r in results}
    state_dir = out_dir / _state.STATE_DIR
    for state_file in sorted(state_dir.glob("*.json")) if state_dir.is_dir() else []:
        if state_file.stem not in by_key:
            try:
                by_key[state_file.stem] = VideoResult(**json.loads(state_file.read_text("utf-8"))["result"])
            except (OSError, ValueError, TypeError, KeyError):
                continue
    everything = list(by_key.values())
    lines = [json.dumps(line, ensure_ascii=False) for r in everything for line in r.frames]
    atomic_write_text(out_dir / MANIFEST_NAME, "".join(f"{line}\n" for line in lines))
    dropped = [json.dumps({"video": r.video, **run}) for r in everything for run in r.dropped]
    atomic_write_text(out_dir / DROPPED_NAME, "".join(f"{line}\n" for line in dropped))
    combined = ExtractResult(out_dir, everything, errors)
    drop_counts: Counter[str] = Counter()
    for r in everything:
        drop_counts.update(r.drop_counts)
    atomic_write_json(out_dir / SUMMARY_NAME, {
        "stage": "extract", "summary": combined.summary_line(), "films": len(everything), "shots": combined.shots,
        "frames": combined.frames, "dropped": dict(sorted(drop_counts.items())), "errors": errors,
        "videos": [{"video": r.video, "key": r.key, "fps": r.fps, "frames_decoded": r.frames_decoded,
                    "shots": len(r.shots), "frames": len(r.frames), "dropped": r.drop_counts,
                    "shot_list": r.shots} for r in everything],
    })


def read_manifest(frames_dir: str | Path) -> list[dict[str, Any]]:
    """The manifest lines of an extracted folder (empty when it has none)."""
    path = Path(frames_dir) / MANIFEST_NAME
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
