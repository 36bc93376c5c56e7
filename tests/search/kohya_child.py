"""A search with the real executor in its own process (killed by test_kohya_executor to test adoption)."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from pathlib import Path

import optuna

from orchestrator.config.paths import ProjectPaths
from orchestrator.search.kohya_executor import KohyaExecutor
from orchestrator.search.space import parse_search_space
from orchestrator.search.study import Search, SearchSettings
from orchestrator.vision import load_clip

FAKE_SD_SCRIPTS = Path(__file__).resolve().parents[1] / "fakes" / "fake_sd_scripts"


def mark_phases(phase_file: Path, dwell: float) -> None:
    """Name the phase the orchestrator is in (ask, evaluate, tell) in ``phase_file`` and linger ``dwell`` s at
    its edges, so that the chaos test can land a kill inside a phase it chose, not only where time goes."""

    def write(phase: str) -> None:
        partial = phase_file.with_suffix(".partial")
        partial.write_text(phase)
        os.replace(partial, phase_file)

    def marked(function, phase: str, *, before: bool, after: bool):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            write(phase)
            if before:
                time.sleep(dwell)
            try:
                result = function(*args, **kwargs)
                if after:
                    time.sleep(dwell)  # e.g. asked but not yet beating, told but results not yet written
                return result
            finally:
                write("")

        return wrapper

    from orchestrator.evaluate import Evaluator

    optuna.study.Study.ask = marked(optuna.study.Study.ask, "ask", before=False, after=True)
    optuna.study.Study.tell = marked(optuna.study.Study.tell, "tell", before=True, after=True)
    Evaluator.score_epoch = marked(Evaluator.score_epoch, "evaluate", before=True, after=False)
    Evaluator.evaluate = marked(Evaluator.evaluate, "evaluate", before=True, after=True)
    _mark_schedule_phases(write, dwell)


def _mark_schedule_phases(write, dwell: float) -> None:
    """The scheduler's phases: ``pause`` from the decision to pause a run until it is recorded paused (the
    trainer winds down meanwhile), ``paused`` while the orchestrator decides what runs next with a run
    paused, ``resume`` from taking a paused run up until its trainer has been relaunched."""
    import orchestrator.runner as runner
    from orchestrator.search import scheduled

    def lingering(phase: str) -> None:
        write(phase)
        time.sleep(dwell)

    at_rung, finish_segment = scheduled.Schedule.at_rung, scheduled.Schedule.finish_segment
    next_action, resume = scheduled.Schedule.next_action, scheduled.Schedule.resume
    start_training = runner.start_training

    def marked_at_rung(self, *args, **kwargs):
        reason = at_rung(self, *args, **kwargs)
        if reason:
            lingering("pause")  # stays "pause" until the segment is recorded (or another phase is named)
        return reason

    def marked_finish_segment(self, trial, outcome, *args, **kwargs):
        if outcome.paused_at is None:
            return finish_segment(self, trial, outcome, *args, **kwargs)
        lingering("pause")
        try:
            return finish_segment(self, trial, outcome, *args, **kwargs)
        finally:
            time.sleep(dwell)  # recorded paused, the results file not yet rewritten by the next step
            write("")

    def marked_next_action(self):
        if any(run.phase == "paused" for run in self.runs()):
            lingering("paused")
            try:
                return next_action(self)
            finally:
                write("")
        return next_action(self)

    def marked_resume(self, number):
        lingering("resume")
        return resume(self, number)

    def marked_start_training(*args, **kwargs):
        if kwargs.get("resume"):
            lingering("resume")
        try:
            handle = start_training(*args, **kwargs)
            if kwargs.get("resume"):
                time.sleep(dwell)  # the resumed trainer runs; the search has not followed it yet
            return handle
        finally:
            write("")

    scheduled.Schedule.at_rung = marked_at_rung
    scheduled.Schedule.finish_segment = marked_finish_segment
    scheduled.Schedule.next_action = marked_next_action
    scheduled.Schedule.resume = marked_resume
    runner.start_training = marked_start_training


def main() -> None:
    options = json.loads(Path(sys.argv[1]).read_text())
    if options.get("phase_file"):
        mark_phases(Path(options["phase_file"]), float(options.get("phase_dwell", 0.5)))
    root = Path(options["root"])
    paths = ProjectPaths(root=root, sd_scripts=FAKE_SD_SCRIPTS, trainer_python=sys.executable,
                         base_model_sd15=str(root / "models" / "sd15-random"), base_model_sdxl="x/y",
                         tokenizer_cache_dir="", dataset_dir=root / "data", output_root=root / "outputs",
                         logs_dir=root / "logs" / "training", prompts_file=root / "prompts.txt")
    executor = KohyaExecutor(paths=paths, references=root / "references", device="cpu", allow_cpu=True,
                             encoder=load_clip("tiny-clip", "random"), tmux_socket=options["socket"],
                             poll_seconds=0.1, stop_timeout=options.get("stop_timeout", 120.0))
    settings = SearchSettings(space=parse_search_space(options["space"]), base_config=options["base"],
                              output=Path(options["output"]), trials=options.get("trials", 1),
                              seed=options.get("seed", 0), pruner=options.get("pruner", "none"),
                              study_name=options.get("study_name", "lora_hyperparameter_search"),
                              patience=options.get("patience", 2),
                              claim_seconds=options.get("claim_seconds", 60.0),
                              scheduler=options.get("scheduler", "none"))
    Search(settings, executor).run()


if __name__ == "__main__":
    main()
