"""Log parsing speed and memory: the sd-scripts grammar on a 100 MB tqdm-style log vs a plain line read.

Writes a synthetic training log shaped like the real transcripts (``\\r`` progress twice per step,
an ``epoch N/M`` block, validation bars with cursor-up escapes, checkpoint/state/sample lines), then
times, side by side in one run:

- a plain line-by-line read of the file (text mode: ``\\r`` and ``\\n`` both end a line);
- the grammar alone (1 MB chunks, incremental UTF-8 decoding, ``LogParser.feed``);
- ``LogTail``: the same plus every event folded into a ``RunRecord``, i.e. what ``follow`` does.

Read in one go, the log is a backlog: its thousands of training-bar drawings per line are sampled
(see ``LogParser._bulk_steps``); following a live run reads every drawing.

Memory: tracemalloc's peak while parsing a 10 MB and the 100 MB log; constant memory means the two
peaks are about equal (only the record's per-step loss list grows with the number of steps, so the
parser alone is measured for the peak).

    .venv/bin/python bench/log_parsing.py [--mb 100]
"""

from __future__ import annotations

import argparse
import codecs
import tempfile
import time
import tracemalloc
from pathlib import Path

from orchestrator.kohya.log_grammar import LogParser
from orchestrator.runner.log_tail import LogTail
from orchestrator.runner.record import RunRecord

STEPS_PER_EPOCH = 5000
BAR = "██████████"


def write_log(path: Path, megabytes: float) -> int:
    """A log of about ``megabytes`` MB; returns the number of steps in it."""
    target = int(megabytes * 2**20)
    total_steps = 10**7
    step, epoch, size = 0, 0, 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("running training / 学習開始\n  num batches per epoch / 1epochのバッチ数: 5000\n"
                     f"  total optimization steps / 学習ステップ数: {total_steps}\n")
        while size < target:
            epoch += 1
            parts = [f"\nepoch {epoch}/2000\n\nepoch is incremented. current_epoch: {epoch - 1}, epoch: {epoch}\n"]
            for _ in range(STEPS_PER_EPOCH):
                step += 1
                percent = 100 * step // total_steps
                bar = f"\rsteps: {percent:3d}%|{BAR[:percent // 10]:<10}| {step}/{total_steps} [01:02:03<11:22:33,  1.23s/it"
                parts.append(f"{bar}, avr_loss={0.1 + (step % 97) / 1000:.4g}]{bar}, avr_loss={0.1 + (step % 89) / 1000:.4g}]")
            parts.append("\n")
            parts.append("\repoch validation steps:   0%|          | 0/4 [00:00<?, ?it/s]\x1b[A")  # as tqdm opens it
            for n in range(1, 5):
                parts.append(f"\repoch validation steps: {25 * n:3d}%|{BAR[:n * 2]:<10}| {n}/4 [00:01<00:01,  "
                             f"2.40it/s, val_epoch_avg_loss=1.0{n}, timestep={200 * n}]\x1b[A")
            parts.append(f"\nsaving checkpoint: /runs/luca/luca-{epoch:06d}.safetensors\n"
                         f"saving state at epoch {epoch}\ngenerating sample images at step / サンプル画像生成 ステップ: {step}\n")
            chunk = "".join(parts)
            handle.write(chunk)
            size += len(chunk.encode("utf-8"))
    return step


def plain_read(path: Path) -> float:
    start = time.perf_counter()
    count = 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        for _line in handle:
            count += 1
    return time.perf_counter() - start


def grammar_read(path: Path) -> tuple[float, int]:
    record = RunRecord(output_name="luca", run_dir=str(path.parent), log_path=str(path))
    start = time.perf_counter()
    tail = LogTail(record)
    tail.poll()
    tail.close()
    return time.perf_counter() - start, len(record.losses)


def parser_read(path: Path) -> float:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    parser = LogParser()
    start = time.perf_counter()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            parser.feed(decoder.decode(chunk))
    parser.close()
    return time.perf_counter() - start


def parser_peak_bytes(path: Path) -> int:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    parser = LogParser()
    tracemalloc.start()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            parser.feed(decoder.decode(chunk))
    parser.close()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--mb", type=float, default=100.0)
    args = options.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        big, small = Path(folder) / "big.log", Path(folder) / "small.log"
        steps = write_log(big, args.mb)
        write_log(small, args.mb / 10)
        plain_read(big)  # warm the page cache for both readers
        plain = min(plain_read(big) for _ in range(3))
        parser_only = min(parser_read(big) for _ in range(3))
        grammar, losses = min(grammar_read(big) for _ in range(3))
        peak_small, peak_big = parser_peak_bytes(small), parser_peak_bytes(big)
        size = big.stat().st_size / 2**20
    print(f"log: {size:.0f} MB, {steps} steps ({2 * steps} progress updates)")
    print(f"plain line read : {plain:6.2f} s")
    print(f"grammar (events): {parser_only:6.2f} s   ratio {parser_only / plain:5.2f}x (target <= 3x)")
    print(f"grammar + record: {grammar:6.2f} s   ratio {grammar / plain:5.2f}x   ({losses} loss points: a "
          "backlog is sampled, live following records every step)")
    print(f"parser peak memory: {peak_small / 2**20:.1f} MB at {size / 10:.0f} MB of log, "
          f"{peak_big / 2**20:.1f} MB at {size:.0f} MB (constant: chunk + one record)")


if __name__ == "__main__":
    main()
