"""A search with the real executor in its own process (killed by test_kohya_executor to test adoption)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from orchestrator.config.paths import ProjectPaths
from orchestrator.search.kohya_executor import KohyaExecutor
from orchestrator.search.space import parse_search_space
from orchestrator.search.study import Search, SearchSettings
from orchestrator.vision import load_clip

FAKE_SD_SCRIPTS = Path(__file__).resolve().parents[1] / "fakes" / "fake_sd_scripts"


def main() -> None:
    options = json.loads(Path(sys.argv[1]).read_text())
    root = Path(options["root"])
    paths = ProjectPaths(root=root, sd_scripts=FAKE_SD_SCRIPTS, trainer_python=sys.executable,
                         base_model_sd15=str(root / "models" / "sd15-random"), base_model_sdxl="x/y",
                         tokenizer_cache_dir="", dataset_dir=root / "data", output_root=root / "outputs",
                         logs_dir=root / "logs" / "training", prompts_file=root / "prompts.txt")
    executor = KohyaExecutor(paths=paths, references=root / "references", device="cpu", allow_cpu=True,
                             encoder=load_clip("tiny-clip", "random"), tmux_socket=options["socket"],
                             poll_seconds=0.1)
    settings = SearchSettings(space=parse_search_space(options["space"]), base_config=options["base"],
                              output=Path(options["output"]), trials=1, seed=0, pruner="none")
    Search(settings, executor).run()


if __name__ == "__main__":
    main()
