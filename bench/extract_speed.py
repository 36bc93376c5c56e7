"""``extract`` speed against decoding alone, and its memory against the film's length.

Measured side by side in one run, on a toy film (``orchestrator.toy.generate_toy_film``: cuts, a second
character, a fade to black, a frozen stretch) whose frames are looped and scaled into longer MJPG
``.avi`` files with OpenCV (the backend extract reads with, so no ffmpeg):

1. decode alone: every frame read with the same OpenCV ``VideoCapture`` backend (``read_frames``) and
   thrown away: the floor no frame-extraction tool can beat;
2. extract: ``extract_videos`` on the same file (shot detection, the judge, the spread sampler, PNG
   writes), into a fresh folder each round. Rounds alternate (decode, extract, decode, ...) so both see
   the same neighbours' load. The ratio is taken on each side's fastest round (the one least disturbed
   by other processes, as ``timeit`` advises), and on the medians too.
   Target: extract's speed >= 0.8x decoding's.
3. memory: a fresh child process extracts a short film and another a film ``--long-factor`` times
   longer; each reports its peak RSS (``VmHWM``) and Python's peak allocations
   (``tracemalloc``, which numpy reports to). Target: flat (the difference does not grow with length).

Usage::

    .venv/bin/python bench/extract_speed.py [--size 1920x1080] [--seconds 24] [--shot-seconds 4] [--rounds 3]
        [--memory-size 384x288] [--long-factor 6]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# OpenMP/OpenCV worker threads spin between calls; passive waiting keeps a shared CPU's figures steady.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._rounds import print_rounds, print_speed_ratio  # noqa: E402


def _size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def toy_frames(folder: Path, *, fps: float, shot_seconds: float) -> list:
    """The toy film's frames (384x288, BGR), decoded once."""
    import cv2

    from orchestrator.toy import ToyFilmSpec, generate_toy_film

    toy = generate_toy_film(folder, ToyFilmSpec(fps=fps, width=384, height=288, shot_seconds=shot_seconds))
    capture = cv2.VideoCapture(str(toy.video))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def make_film(frames: list, folder: Path, *, size: tuple[int, int], seconds: float, fps: float) -> Path:
    """``frames`` looped (and scaled to ``size``) into a ``seconds``-long MJPG .avi."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    video = folder / f"film_{size[0]}x{size[1]}_{round(seconds)}s.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for index in range(round(seconds * fps)):
        frame = frames[index % len(frames)]  # scaled as written: a list of 1080p frames would be gigabytes
        writer.write(frame if frame.shape[1::-1] == size else cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR))
    writer.release()
    return video


def decode_seconds(video: Path) -> tuple[float, int]:
    from orchestrator.extract import probe_video, read_frames

    info = probe_video(video)
    start = time.perf_counter()
    count = sum(1 for _ in read_frames(info))
    return time.perf_counter() - start, count


def extract_seconds(video: Path, out: Path) -> tuple[float, str]:
    from orchestrator.extract import ExtractConfig, extract_videos

    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    result = extract_videos([video], out, ExtractConfig(), progress=False)
    elapsed = time.perf_counter() - start
    if result.errors:
        raise SystemExit(f"extract failed: {result.errors}")
    return elapsed, result.summary_line()


def memory_child(video: Path, out: Path) -> None:
    """Run in a fresh process: extract ``video`` and print its peaks as JSON."""
    import tracemalloc

    from orchestrator.extract import ExtractConfig, extract_videos

    tracemalloc.start()
    result = extract_videos([video], out, ExtractConfig(), progress=False)
    _, traced_peak = tracemalloc.get_traced_memory()
    # VmHWM, not ru_maxrss: ru_maxrss keeps the parent's size from before exec (the fork's copy).
    status = Path("/proc/self/status").read_text()
    rss_kib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    print(json.dumps({"frames_decoded": result.videos[0].frames_decoded, "kept": result.frames,
                      "peak_rss_mib": round(rss_kib / 1024, 1), "traced_peak_mib": round(traced_peak / 2**20, 1)}))


def measure_memory(video: Path, out: Path) -> dict:
    completed = subprocess.run([sys.executable, __file__, "--memory-child", str(video), str(out)],
                               capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=_size, default=(1920, 1080), help="speed film size WxH (default 1920x1080)")
    parser.add_argument("--seconds", type=float, default=24.0,
                        help="speed film length (default 24 s: the toy film's six 4 s shots once)")
    parser.add_argument("--shot-seconds", type=float, default=4.0,
                        help="shot length; 4 s is about a feature animation's average (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per side (default 3)")
    parser.add_argument("--memory-size", type=_size, default=(384, 288), help="memory films' size (default 384x288)")
    parser.add_argument("--long-factor", type=float, default=6.0,
                        help="the long memory film is this many times the short one (default 6)")
    parser.add_argument("--memory-child", nargs=2, metavar=("VIDEO", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(Path(args.memory_child[0]), Path(args.memory_child[1]))
        return

    with tempfile.TemporaryDirectory(prefix="bench_extract_") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        fps = 24.0
        frames_of_toy = toy_frames(root / "toy", fps=fps, shot_seconds=args.shot_seconds)
        film = make_film(frames_of_toy, root / "speed", size=args.size, seconds=args.seconds, fps=fps)
        made_at = time.perf_counter()
        decode_seconds(film)  # warm-up: file cache, codec, imports
        decodes, extracts = [], []
        for _ in range(args.rounds):
            seconds, frames = decode_seconds(film)
            decodes.append(seconds)
            seconds, summary = extract_seconds(film, root / "frames")
            extracts.append(seconds)
        made = time.perf_counter()
        print(f"film: {film.name}, {frames} frames ({args.size[0]}x{args.size[1]} MJPG); extract: {summary}")
        print_rounds("decode alone ", decodes, frames, digits=2)
        print_rounds("extract      ", extracts, frames, digits=2)
        print_speed_ratio("extract speed / decode speed", decodes, extracts, target=0.8)

        print(f"(film made in {made_at - started:.0f} s, speed rounds {made - made_at:.0f} s)")
        short_seconds = 120.0
        short = make_film(frames_of_toy, root / "mem_short", size=args.memory_size, seconds=short_seconds, fps=fps)
        long = make_film(frames_of_toy, root / "mem_long", size=args.memory_size,
                         seconds=short_seconds * args.long_factor, fps=fps)
        small = measure_memory(short, root / "mem_short" / "frames")
        large = measure_memory(long, root / "mem_long" / "frames")
        print(f"memory, {args.memory_size[0]}x{args.memory_size[1]}: {short_seconds / 60:.0f}-min film "
              f"({small['frames_decoded']} frames, {small['kept']} kept): peak RSS {small['peak_rss_mib']} MiB, "
              f"traced peak {small['traced_peak_mib']} MiB")
        print(f"memory, {args.memory_size[0]}x{args.memory_size[1]}: {short_seconds * args.long_factor / 60:.0f}-min "
              f"film ({large['frames_decoded']} frames, {large['kept']} kept): peak RSS {large['peak_rss_mib']} MiB, "
              f"traced peak {large['traced_peak_mib']} MiB")
        rss_growth = large["peak_rss_mib"] - small["peak_rss_mib"]
        traced_growth = large["traced_peak_mib"] - small["traced_peak_mib"]
        flat = rss_growth < 0.1 * small["peak_rss_mib"] + 16
        print(f"memory growth for a {args.long_factor:g}x longer film: peak RSS {rss_growth:+.1f} MiB, traced "
              f"{traced_growth:+.1f} MiB (target: flat, < 10% + 16 MiB): {'PASS' if flat else 'FAIL'}")
        print(f"bench wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
