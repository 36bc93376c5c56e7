"""Film in: shots and the sharpest usable frames of each shot, from video files (``lora-pipeline extract``).

Example (offline, a few seconds)::

    from orchestrator.extract import ExtractConfig, extract_videos

    result = extract_videos(["film.mp4"], "frames/", ExtractConfig(per_shot=3))
    print(result.summary_line())  # 1 film → 1,240 shots → 3,008 frames
"""

from orchestrator.extract._extract import (
    DROPPED_NAME,
    MANIFEST_NAME,
    SUMMARY_NAME,
    ExtractConfig,
    ExtractResult,
    VideoResult,
    extract_video,
    extract_videos,
    read_manifest,
)
from orchestrator.extract._judge import FrameJudge, FrameMeasure, JudgeConfig
from orchestrator.extract._sampler import SpreadSampler
from orchestrator.extract._video import VideoError, VideoInfo, probe_video, read_frames, read_frames_ahead

__all__ = [
    "DROPPED_NAME",
    "MANIFEST_NAME",
    "SUMMARY_NAME",
    "ExtractConfig",
    "ExtractResult",
    "FrameJudge",
    "FrameMeasure",
    "JudgeConfig",
    "SpreadSampler",
    "VideoError",
    "VideoInfo",
    "VideoResult",
    "extract_video",
    "extract_videos",
    "probe_video",
    "read_frames",
    "read_frames_ahead",
    "read_manifest",
]
