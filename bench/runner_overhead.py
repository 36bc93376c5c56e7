"""Wrapper overhead: ``lora-pipeline train --wait`` against the same sd-scripts command run directly.

Side by side in one run, on one tiny project (3 images, 64 px, 2 epochs, batch 1):

1. ``lora-pipeline train bench_cpu --wait --allow-cpu`` (render, pre-flight, tmux session, supervisor,
   live log following into run.json), timed from the command's start to its exit;
2. the very argv, cwd and environment the runner used (read back from the run's ``launch.json``),
   run directly with ``subprocess`` and its output sent to a file.

``--trainer real`` (default when available) runs the real ``train_network.py`` on CPU with the
random-weight SD1.5 model of the test cache (``LORA_PIPELINE_SD_SCRIPTS``, ``.venv-trainer``,
``~/.cache/lora-pipeline-tests``); ``--trainer fake`` runs the test double with paced steps.
The direct run goes second, so it has the warmer page cache: the ratio errs against the wrapper.
On a shared machine the two runs also see different loads, so the overhead is also measured within
the wrapped run: its wall time against the trainer's own (the supervisor's start/exit clock).

    .venv/bin/python bench/runner_overhead.py [--trainer real|fake]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAKE = ROOT / "tests" / "fakes" / "fake_sd_scripts"
CACHE = Path(os.environ.get("LORA_PIPELINE_TEST_CACHE", Path.home() / ".cache" / "lora-pipeline-tests"))
PRESET = """[preset]
name = "bench_cpu"
family = "sd15"
description = "the contract's tiny CPU run"
min_vram_gb = 0.0

[dataset]
resolution = 64
batch_size = 1
enable_bucket = false
caption_extension = ".txt"

[network]
network_module = "networks.lora"
network_dim = 4
network_alpha = 1.0

[optimizer]
optimizer_type = "AdamW"
learning_rate = 1e-4
lr_scheduler = "constant"

[training]
max_train_epochs = 2
seed = 42
mixed_precision = "no"
cache_latents = true
max_data_loader_n_workers = 0

[saving]
save_model_as = "safetensors"
save_every_n_epochs = 1

[sample]
sample_every_n_epochs = 1
sample_sampler = "euler_a"
"""


def real_locations() -> dict[str, str] | None:
    sd_scripts = Path(os.environ.get("LORA_PIPELINE_SD_SCRIPTS", ROOT / "sd-scripts"))
    python = Path(os.environ.get("LORA_PIPELINE_TRAINER_PYTHON", ROOT / ".venv-trainer" / "bin" / "python"))
    model, tokenizers = CACHE / "sd15-random", CACHE / "tokenizers"
    if not ((sd_scripts / "train_network.py").is_file() and python.exists() and model.is_dir()
            and tokenizers.is_dir()):
        return None
    return {"SD_SCRIPTS": str(sd_scripts), "TRAINER_PYTHON": str(python), "BASE_MODEL_SD15": str(model),
            "TOKENIZER_CACHE_DIR": str(tokenizers)}


def make_project(root: Path, locations: dict[str, str]) -> dict[str, str]:
    from PIL import Image

    (root / "configs" / "training").mkdir(parents=True)
    (root / "configs" / "training" / "bench_cpu.toml").write_text(PRESET, encoding="utf-8")
    images = root / "data" / "kohya" / "1_bench"
    images.mkdir(parents=True)
    for index in range(3):
        Image.new("RGB", (64, 64), (80 * index, 120, 200)).save(images / f"img_{index}.png")
        (images / f"img_{index}.txt").write_text("sks thing", encoding="utf-8")
    (root / "prompts.txt").write_text("sks thing --n blurry --w 64 --h 64 --d 1234 --s 2\n", encoding="utf-8")
    env = dict(os.environ)
    env.update({f"LORA_PIPELINE_{key}": value for key, value in locations.items()})
    env.update({"LORA_PIPELINE_HOME": str(root), "LORA_PIPELINE_DATASET_DIR": str(root / "data" / "kohya"),
                "LORA_PIPELINE_PROMPTS_FILE": str(root / "prompts.txt"), "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "",
                "LORA_PIPELINE_TMUX_SOCKET": f"lp-bench-{uuid.uuid4().hex[:8]}"})
    return env


def run_direct(argv: list[str], cwd: str, env: dict[str, str], log_path: Path) -> tuple[float, float, bool]:
    """Wall seconds, CPU seconds and whether ``model saved.`` was printed."""
    with open(log_path, "wb") as log:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        completed = subprocess.run(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        sys.exit(f"the direct run failed (exit {completed.returncode}); see {log_path}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return seconds, cpu, b"model saved." in log_path.read_bytes()


def direct_command(root: Path, env: dict[str, str]) -> tuple[list[str], str, dict[str, str]]:
    """The argv the runner would build, rendered here (for --direct-first, before any wrapped run)."""
    os.environ.update(env)
    from orchestrator.config.paths import load_paths
    from orchestrator.kohya.command import build_training_command
    from orchestrator.kohya.render import render_run

    paths = load_paths(root)
    rendered = render_run("bench_cpu", paths=paths, run_dir=root / "direct")
    command = build_training_command(trainer_python=paths.trainer_python, sd_scripts=paths.sd_scripts,
                                     script_name=rendered.script_name, config_file=rendered.config_file)
    return command.argv, str(command.cwd), {**env, **command.env}


def run_wrapped(root: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds of `train --wait`, the trainer's own wall seconds and CPU seconds in that run."""
    start = time.perf_counter()
    wrapped = subprocess.run([sys.executable, "-m", "orchestrator", "train", "bench_cpu", "--wait",
                              "--allow-cpu", "--out", str(root / "wrapped")], cwd=root, env=env,
                             capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if wrapped.returncode != 0:
        sys.exit(f"the wrapped run failed:\n{wrapped.stdout}\n{wrapped.stderr}")
    status = root / "wrapped" / ".runner"
    exit_info = json.loads((status / "exit.json").read_text())
    trainer = json.loads((status / "trainer.json").read_text())
    return seconds, exit_info["finished_unix"] - trainer["started_unix"], exit_info["cpu_seconds"]


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--trainer", choices=["real", "fake"], default=None)
    options.add_argument("--direct-first", action="store_true", help="run the direct command first")
    args = options.parse_args()
    real = real_locations()
    trainer = args.trainer or ("real" if real else "fake")
    if trainer == "real" and real is None:
        sys.exit("real sd-scripts, .venv-trainer or the test model cache is missing; use --trainer fake")
    locations = real if trainer == "real" else {"SD_SCRIPTS": str(FAKE), "TRAINER_PYTHON": sys.executable,
                                                "BASE_MODEL_SD15": str(FAKE)}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        env = make_project(root, locations)
        if trainer == "fake":
            env.update({"FAKE_SD_SCRIPTS_STEP_SECONDS": "0.5", "FAKE_SD_SCRIPTS_MODE": ""})
        try:
            if args.direct_first:
                argv, cwd, direct_env = direct_command(root, env)
                direct_seconds, direct_cpu, direct_ok = run_direct(argv, cwd, direct_env, root / "direct.log")
                wrapped_seconds, trainer_seconds, wrapped_cpu = run_wrapped(root, env)
            else:
                wrapped_seconds, trainer_seconds, wrapped_cpu = run_wrapped(root, env)
                spec = json.loads((root / "wrapped" / ".runner" / "launch.json").read_text())
                direct_seconds, direct_cpu, direct_ok = run_direct(spec["argv"], spec["cwd"],
                                                                   {**env, **spec["env"]}, root / "direct.log")
        finally:
            subprocess.run(["tmux", "-L", env["LORA_PIPELINE_TMUX_SOCKET"], "kill-server"],
                           capture_output=True)
    print(f"trainer: {trainer} ({locations['SD_SCRIPTS']}); order: "
          f"{'direct, wrapped' if args.direct_first else 'wrapped, direct'}")
    print(f"lora-pipeline train --wait: {wrapped_seconds:7.2f} s  (render, pre-flight, tmux, supervisor, follow)")
    print(f"  of which the trainer ran: {trainer_seconds:7.2f} s  (supervisor's clock, same run)")
    print(f"same argv run directly   : {direct_seconds:7.2f} s  ('model saved.' seen: {direct_ok})")
    print(f"trainer CPU time         : {wrapped_cpu:7.2f} s wrapped, {direct_cpu:.2f} s direct")
    print(f"overhead within the run  : {wrapped_seconds - trainer_seconds:7.2f} s -> ratio "
          f"{wrapped_seconds / trainer_seconds:.3f}  (target <= 1.02)")
    print(f"side-by-side ratio       : {wrapped_seconds / direct_seconds:7.3f}  (includes load changes "
          "between the two runs on a shared machine)")


if __name__ == "__main__":
    main()
