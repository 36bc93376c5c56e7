"""The VRAM pre-flight names the memory the search's own process holds on the training GPU."""

from __future__ import annotations

import os

from orchestrator.common.gpu import GpuInfo, GpuReport
from orchestrator.runner import preflight


def _card(free_mib: int, own_mib: int) -> GpuReport:
    return GpuReport(True, "driver 1", (GpuInfo(0, "RTX 3060", 12288, free_mib, 0, 40, own_mib=own_mib),))


def test_too_little_free_vram_names_this_process_share_and_how_to_move_scoring(monkeypatch):
    monkeypatch.setattr(preflight, "query_gpus", lambda: _card(free_mib=9000, own_mib=2048))
    report = preflight.check_vram(10.0, [0])
    assert len(report.problems) == 1
    assert f"2.0 GiB of it held by this process, pid {os.getpid()}" in report.problems[0]
    assert "--device" in report.problems[0]


def test_without_memory_of_its_own_the_advice_is_to_close_other_programs(monkeypatch):
    monkeypatch.setattr(preflight, "query_gpus", lambda: _card(free_mib=9000, own_mib=0))
    report = preflight.check_vram(10.0, [0])
    assert "close other GPU programs" in report.problems[0] and "this process" not in report.problems[0]
