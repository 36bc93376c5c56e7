"""A search in its own process, so that a test can kill it with SIGKILL like a crashed orchestrator.

Usage: python search_child.py SETTINGS.json
SETTINGS: output, trials, storage, study_name, seed, wall_seconds_per_epoch, trainer_survives,
worker (join the study named in storage, reading its settings from there), kill_self_after (SIGKILL itself as soon as that many trials are counted: "between trials").
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import SPACE_FILE, small_base_config  # noqa: E402

from orchestrator.search.results import counted_trials  # noqa: E402
from orchestrator.search.simulator import SimulatedExecutor  # noqa: E402
from orchestrator.search.space import load_search_space, parse_search_space  # noqa: E402
from orchestrator.search.study import Search, SearchSettings, load_worker_settings  # noqa: E402


class RecordingExecutor(SimulatedExecutor):
    def run(self, request, report):
        self.ran = [*getattr(self, "ran", []), request.number]
        return super().run(request, report)


def main() -> None:
    options = json.loads(Path(sys.argv[1]).read_text())
    data = load_search_space(SPACE_FILE).to_data()
    data["parameters"]["max_train_epochs"]["choices"] = [4, 6, 8]
    worker_options = {"heartbeat_interval": options.get("heartbeat_interval", 60),
                      "grace_period": options.get("grace_period", 600)}
    if options.get("worker"):
        settings = load_worker_settings(options["storage"], options["study_name"], Path(options["output"]),
                                        **worker_options)
    else:
        settings = SearchSettings(
            space=parse_search_space(data, source=SPACE_FILE), base_config=small_base_config(),
            output=Path(options["output"]), trials=options["trials"], storage_url=options.get("storage"),
            study_name=options.get("study_name", "child_study"), seed=options.get("seed", 0),
            pruner=options.get("pruner", "none"), **worker_options,
        )
    executor = RecordingExecutor(wall_seconds_per_epoch=options.get("wall_seconds_per_epoch", 0.0),
                                 trainer_survives=options.get("trainer_survives", False))
    kill_after = options.get("kill_self_after")

    def on_progress(trials) -> None:
        if kill_after is not None and len(counted_trials(trials)) >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    summary = Search(settings, executor).run(on_progress=on_progress)
    print(json.dumps({"counted": summary.counted_trials, "adopted": summary.adopted,
                      "ran": getattr(executor, "ran", [])}))


if __name__ == "__main__":
    main()
