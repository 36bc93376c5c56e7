"""The real sd-scripts transcripts (copied from shared/sd-scripts-contract/), cut into their runs."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).with_name("sd_scripts_transcripts")


def _text(name: str) -> str:
    return (DATA / name).read_bytes().decode("utf-8")


def section(start: str, end: str | None = None, *, name: str = "cpu_run_transcript.log") -> str:
    """The part of a transcript from the line starting with ``start`` up to ``end`` (exclusive)."""
    text = _text(name)
    begin = text.index(start)
    finish = text.index(end, begin + 1) if end else len(text)
    return text[begin:finish]


def run_a_rich() -> str:
    return section("########## RUN A", "########## RUN B")


def run_b_simple() -> str:
    return section("########## RUN B", "########## ERROR")


def error_case(name: str) -> str:
    marker = f"## ----- {name}\n"
    text = section("########## ERROR", "########## RUN C")
    begin = text.index(marker)
    following = text.find("## ----- ", begin + len(marker))
    return text[begin: following if following != -1 else len(text)]


def run_c_resume() -> str:
    return section("########## RUN C", "########## RUN D")


def run_d_single_epoch() -> str:
    return section("########## RUN D")


def sdxl_run() -> str:
    return section("##########\n", name="cpu_run_transcript_sdxl.log")
