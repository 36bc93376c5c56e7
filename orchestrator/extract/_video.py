"""Reading a video file frame by frame with OpenCV, and the errors a person can act on.

OpenCV's ``VideoCapture`` is the backend PySceneDetect's ``VideoStreamCv2`` wraps too, so no system
ffmpeg is needed. Frames are yielded one at a time: nothing here holds more than the current frame
(:func:`read_frames_ahead`: a few frames, decoded in a thread while the caller works on the last ones).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orchestrator.common.errors import UserInputError

#: A decoder that stops this far short of the frame count the container announces read a truncated file.
TRUNCATION_TOLERANCE = 0.02


class VideoError(UserInputError):
    """A file that cannot be read as a video: not a video, an unknown codec, or cut short."""


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    fps: float
    frame_count: int  # as announced by the container (may be 0 for streams that do not say)
    width: int
    height: int

    @property
    def seconds(self) -> float:
        return self.frame_count / self.fps if self.fps else 0.0


def _open(path: Path):  # -> cv2.VideoCapture
    import cv2

    if path.is_dir():
        raise VideoError("is a folder, not a video file (name the video files inside it)", path=path)
    if not path.is_file():
        raise VideoError("video file not found", path=path)
    if path.stat().st_size == 0:
        raise VideoError("empty file (0 bytes), not a video", path=path)
    capture = cv2.VideoCapture(str(path), cv2.CAP_ANY)
    if not capture.isOpened():
        capture.release()
        raise VideoError("cannot open as a video (not a video file, or a container/codec OpenCV cannot "
                         "read)", path=path, hint="convert it with ffmpeg to H.264 .mp4 or MJPG .avi")
    return capture


def probe_video(path: str | Path) -> VideoInfo:
    """Frame rate, announced frame count and size; raises :class:`VideoError` when it is not a readable video."""
    import cv2

    path = Path(path)
    capture = _open(path)
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        ok, frame = capture.read()
        if not ok or frame is None:
            raise VideoError("opens but no frame decodes (unreadable codec, or a truncated/corrupt file)",
                             path=path, hint="convert it with ffmpeg to H.264 .mp4 or MJPG .avi")
        height, width = frame.shape[:2]
    finally:
        capture.release()
    if not fps or fps != fps or fps > 1000:  # NaN or nonsense: a still image opened as a "video"
        raise VideoError(f"no usable frame rate ({fps}); is this a still image rather than a video?", path=path)
    return VideoInfo(path=path, fps=fps, frame_count=max(0, count), width=width, height=height)


def read_frames(info: VideoInfo) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame_number, BGR frame)`` from the start to the end; :class:`VideoError` if the file is
    cut short (fewer frames decode than the container announces)."""
    capture = _open(info.path)
    number = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok or frame is None:
                break
            yield number, frame
            number += 1
    finally:
        capture.release()
    if info.frame_count and number < info.frame_count * (1.0 - TRUNCATION_TOLERANCE):
        raise VideoError(f"truncated or corrupt: decoding stopped at frame {number} of {info.frame_count}",
                         path=info.path, hint="re-copy or re-encode the file")
    if number == 0:
        raise VideoError("no frame decodes", path=info.path)


def read_frames_ahead(info: VideoInfo, *, depth: int = 4) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`read_frames`, decoded in a background thread up to ``depth`` frames ahead.

    OpenCV releases the GIL while it decodes, so decoding the next frames overlaps the caller's work on
    this one: extraction then runs at about the speed of decoding alone instead of the sum of both.
    The thread stops when the caller stops early; its errors (:class:`VideoError`) are raised here.
    """
    slots: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def decode() -> None:
        outcome: BaseException | None = None
        try:
            for item in read_frames(info):
                if not put((True, item)):
                    return
        except BaseException as error:  # handed to the caller's thread, raised there
            outcome = error
        put((False, outcome))

    thread = threading.Thread(target=decode, name=f"decode {info.path.name}", daemon=True)
    thread.start()
    try:
        while True:
            is_frame, value = slots.get()
            if not is_frame:
                if value is not None:
                    raise value  # type: ignore[misc]
                return
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
