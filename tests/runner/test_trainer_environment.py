"""Issue 14 #1: the trainer gets the caller's environment (not the tmux server's from when it started),
plus what the run sets; run.json records the variables the run set."""

from __future__ import annotations

import json
import subprocess

from orchestrator.runner import tmux
from orchestrator.runner.launch import start_training
from orchestrator.runner.record import load_run_record
from tests.runner.conftest import make_rendered


def test_the_trainer_sees_the_callers_environment_and_run_json_lists_what_the_run_set(
        tmp_path, tmux_socket, project_paths, fake_env, monkeypatch):
    # The tmux server starts first, without the variables: a trainer inheriting the server's environment
    # would not see them.
    subprocess.run([tmux.tmux_binary(), "-L", tmux_socket, "new-session", "-d", "-s", "warm", "sleep 600"],
                   check=True)
    dump = tmp_path / "trainer_env.json"
    monkeypatch.setenv("FAKE_SD_SCRIPTS_ENV_DUMP", str(dump))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    monkeypatch.setenv("LORA_TEST_CALLER_ONLY", "value with spaces; and $dollar")
    rendered = make_rendered(tmp_path)
    record = start_training(rendered, paths=project_paths, allow_cpu=True).follow(poll_seconds=0.1)
    assert record.status == "succeeded", record.failure
    seen = json.loads(dump.read_text(encoding="utf-8"))
    assert seen["LORA_TEST_CALLER_ONLY"] == "value with spaces; and $dollar"
    assert seen["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True" and seen["HF_HUB_OFFLINE"] == "1"

    stored = load_run_record(rendered.run_dir)
    assert stored.environment_set, "run.json must list the variables the run set"
    assert "LORA_TEST_CALLER_ONLY" not in stored.environment_set  # the caller's own are not the run's
    for name, value in stored.environment_set.items():
        assert seen[name] == value
    on_disk = json.loads((rendered.run_dir / "run.json").read_text(encoding="utf-8"))
    assert on_disk["environment_set"] == stored.environment_set
