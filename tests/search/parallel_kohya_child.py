"""`search run --parallel-gpus` with the real executor, in processes a chaos test can kill.

Usage: python parallel_kohya_child.py OPTIONS.json            the parent: creates the study, runs the pool
       python parallel_kohya_child.py OPTIONS.json worker GPU  one worker (started by the parent)
OPTIONS as kohya_child.py's, plus gpus (a list).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from orchestrator.config.paths import ProjectPaths
from orchestrator.search.kohya_executor import KohyaExecutor
from orchestrator.search.parallel import WorkerPool, run_gpu_worker, study_state_of
from orchestrator.search.space import parse_search_space
from orchestrator.search.storage import journal_url
from orchestrator.search.study import Search, SearchSettings, load_worker_settings
from orchestrator.vision import load_clip

FAKE_SD_SCRIPTS = Path(__file__).resolve().parents[1] / "fakes" / "fake_sd_scripts"


def executor(options: dict, gpu: str | None) -> KohyaExecutor:
    root = Path(options["root"])
    paths = ProjectPaths(root=root, sd_scripts=FAKE_SD_SCRIPTS, trainer_python=sys.executable,
                         base_model_sd15=str(root / "models" / "sd15-random"), base_model_sdxl="x/y",
                         tokenizer_cache_dir="", dataset_dir=root / "data", output_root=root / "outputs",
                         logs_dir=root / "logs" / "training", prompts_file=root / "prompts.txt")
    return KohyaExecutor(paths=paths, references=root / "references", device="cpu", allow_cpu=True, gpus=gpu,
                         encoder=load_clip("tiny-clip", "random"), tmux_socket=options["socket"],
                         poll_seconds=0.1, stop_timeout=options.get("stop_timeout", 120.0))


def main() -> None:
    options_file = sys.argv[1]
    options = json.loads(Path(options_file).read_text())
    output = Path(options["output"])
    storage = journal_url(output / "optuna_journal.log")
    beats = {"heartbeat_interval": options.get("heartbeat_interval", 2), "grace_period": options.get("grace", 60)}
    if len(sys.argv) > 2:
        gpu = sys.argv[3]
        settings = load_worker_settings(storage, options["study_name"], output, gpus=gpu, own_gpu_orphans_only=True,
                                        **beats)
        run_gpu_worker(settings, executor(options, gpu))
        return
    settings = SearchSettings(space=parse_search_space(options["space"]), base_config=options["base"], output=output,
                              trials=options["trials"], seed=options.get("seed", 0), pruner="none",
                              study_name=options["study_name"], patience=options.get("patience", 0),
                              storage_url=storage, **beats)
    search = Search(settings, executor(options, None))
    pool = WorkerPool(options["gpus"], lambda gpu: [sys.executable, __file__, options_file, "worker", str(gpu)],
                      log_folder=output / "workers", study_state=lambda: study_state_of(search.study, settings.trials),
                      poll_seconds=0.2, say=lambda line: print(line, flush=True))
    outcome = pool.run()
    search.write_results()
    if not outcome.done or outcome.broken:
        sys.exit(f"not done: {[slot.broken for slot in outcome.slots]}")


if __name__ == "__main__":
    main()
