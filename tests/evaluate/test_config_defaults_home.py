"""A project folder without configs/evaluation/default.toml still gets the shipped defaults."""

from __future__ import annotations

from orchestrator.evaluate import load_evaluation_config


def test_a_home_without_evaluation_defaults_uses_the_shipped_ones(tmp_path, monkeypatch) -> None:
    """Found by the real SDXL test in CI: with LORA_PIPELINE_HOME set to its own folder, `evaluate` failed
    with "evaluation config not found", even with --config given (it is laid over the defaults)."""
    monkeypatch.setenv("LORA_PIPELINE_HOME", str(tmp_path))
    config = load_evaluation_config()
    assert config.source.endswith("configs/evaluation/default.toml")
    assert not config.source.startswith(str(tmp_path))
