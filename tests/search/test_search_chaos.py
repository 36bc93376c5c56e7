"""The chaos run (tests/search/chaos.py): a few events in the default suite, 20+ with ``-m slow``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from orchestrator.runner import tmux

pytestmark = pytest.mark.skipif(tmux.tmux_binary() is None, reason="tmux is not installed")


def _chaos(tmp_path, events: int, seed: int, **options):
    sys.path.insert(0, str(Path(__file__).parent))
    from chaos import Chaos

    return Chaos(tmp_path, seed=seed, **options).run(events)


@pytest.mark.timeout(240)
def test_a_few_random_kills_then_resumes_keep_every_invariant(tmp_path) -> None:
    report = _chaos(tmp_path, events=3, seed=13)
    assert len(report.events) == 3 and report.checks > 10
    assert report.violations == []


@pytest.mark.timeout(240)
def test_kills_while_runs_pause_wait_paused_and_resume_keep_every_invariant(tmp_path) -> None:
    """The scheduler's phases: no epoch trained twice, no paused state lost, every paused run taken up
    again or closed at its best (tests/search/chaos.py's check_paused_states)."""
    report = _chaos(tmp_path, events=3, seed=7, scheduler="first-epoch", focus=("pause", "paused", "resume"),
                    trials=2, step_seconds=0.2)
    assert len(report.events) == 3 and report.checks > 10
    assert any(event.endswith(("pause", "paused", "resume")) for event in report.events), report.events
    assert report.violations == []


@pytest.mark.timeout(600)
def test_three_parallel_workers_survive_random_kills_with_every_invariant(tmp_path) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from parallel_chaos import ParallelChaos

    report = ParallelChaos(tmp_path, seed=20, gpus=3, trials=5).run(3)
    assert len(report.events) == 3 and report.checks > 10
    assert report.violations == []


@pytest.mark.slow
@pytest.mark.soak
@pytest.mark.timeout(1800)
def test_twenty_random_kills_then_resumes_keep_every_invariant(tmp_path) -> None:
    report = _chaos(tmp_path, events=20, seed=2026)
    assert len(report.events) >= 20 and report.violations == []


@pytest.mark.slow
@pytest.mark.soak
@pytest.mark.timeout(1800)
def test_twenty_kills_across_pause_and_resume_keep_every_invariant(tmp_path) -> None:
    report = _chaos(tmp_path, events=20, seed=2026, scheduler="first-epoch")
    assert len(report.events) >= 20 and report.violations == []
