"""Files the command half of the hostile-input suite feeds the CLI (train, stop, watch, monitor, evaluate,
search, queue): search spaces with wrong types and ranges, hand-edited run records and queue files, a
finished search whose results file is damaged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from orchestrator.vision.synthetic import synthetic_scene

_DIM = '[parameters.network_dim]\nkind = "categorical"\nchoices = [64, 128]\n'
_LR = '[parameters.learning_rate]\nkind = "float"\n'

SPACES = {
    "sp_high_inf": _LR + "low = 1e-5\nhigh = inf\n",
    "sp_int_fraction": '[parameters.network_dim]\nkind = "int"\nlow = 1.5\nhigh = 64\n',
    "sp_step_zero": '[parameters.network_dim]\nkind = "int"\nlow = 8\nhigh = 64\nstep = 0\n',
    "sp_step_negative": _LR + "low = 1e-5\nhigh = 1e-4\nstep = -1e-5\n",
    "sp_step_word": '[parameters.network_dim]\nkind = "int"\nlow = 8\nhigh = 64\nstep = "big"\n',
    "sp_log_string": _LR + 'low = 1e-5\nhigh = 1e-4\nlog = "yes"\n',
    "sp_helper_string": _DIM + 'helper = "no"\n',
    "sp_choices_nested": '[parameters.network_dim]\nkind = "categorical"\nchoices = [[64], {a = 1}]\n',
    "sp_choices_dupe": '[parameters.network_dim]\nkind = "categorical"\nchoices = [64, 64]\n',
    "sp_choices_mixed": '[parameters.network_dim]\nkind = "categorical"\nchoices = [64, "big"]\n',
    "sp_choices_nan": '[parameters.network_dropout]\nkind = "categorical"\nchoices = [0.0, nan]\n',
    "sp_unknown_param_key": '[parameters.network_dim]\nkind = "int"\nlow = 8\nhigh = 64\nhihg = 128\n',
    "sp_unknown_table": _DIM + '[paramters.learning_rate]\nkind = "float"\nlow = 1e-5\nhigh = 1e-4\n',
    "sp_param_not_kohya": '[parameters.netwrk_dim]\nkind = "categorical"\nchoices = [64, 128]\n',
    "sp_param_type_mismatch": '[parameters.network_dim]\nkind = "categorical"\nchoices = ["big", "small"]\n',
    "sp_low_bool": '[parameters.network_dim]\nkind = "int"\nlow = true\nhigh = 64\n',
    "sp_search_not_table": "search = 5\n" + _DIM,
    "sp_derived_not_table": "derived = 5\n" + _DIM,
    "sp_derived_self": _DIM + '[derived.network_dim]\nrule = "copy"\nof = ["network_dim"]\n',
    "sp_neg_dim": '[parameters.network_dim]\nkind = "int"\nlow = -64\nhigh = -8\n',
    "sp_lr_negative": _LR + "low = -1e-4\nhigh = 1e-4\n",
    "sp_epochs_zero_choice": '[parameters.max_train_epochs]\nkind = "categorical"\nchoices = [0, 10]\n',
}


def write_spaces(root: Path) -> None:
    for name, body in SPACES.items():
        (root / f"{name}.toml").write_text(body)


def write_run_records(root: Path) -> None:
    """Run folders whose run.json a person edited by hand: right JSON, wrong types or values."""
    for name, record in (
        ("run_epochs_word", {"status": "running", "output_name": "luca", "epochs": "abc", "losses": 5}),
        ("run_status_number", {"status": 5, "output_name": "luca"}),
        ("run_status_bogus", {"status": "exploded", "output_name": "luca"}),
        ("run_pid_word", {"status": "running", "output_name": "luca", "pid": "abc", "tmux_session": "nosess_x"}),
        ("run_name_number", {"status": "succeeded", "output_name": 5}),
        ("run_checkpoints_list", {"status": "succeeded", "output_name": "luca", "checkpoints": ["a"]}),
    ):
        folder = root / name
        folder.mkdir()
        (folder / "run.json").write_text(json.dumps(record))


def write_evaluated_runs(root: Path) -> None:
    """Evaluated runs whose evaluation/scores.json (merged by --epoch) is damaged."""
    from tests.evaluate.fake_run import make_run

    for name, text in (("badscores", "{broken"), ("scoreslist", "[1, 2]")):
        run = make_run(root / name).run_dir
        (run / "evaluation").mkdir(exist_ok=True)
        (run / "evaluation" / "scores.json").write_text(text)


def _queue(jobs: list, **top) -> str:
    return json.dumps({"format": 1, "next_id": 9, "jobs": jobs, **top})


def write_queues(root: Path) -> None:
    folder = root / "q"
    folder.mkdir()
    job = {"id": 1, "kind": "train", "preset": "luca_final_v1_pure"}
    for name, text in (
        ("ok", _queue([job])),
        ("bad_id", _queue([{**job, "id": "abc"}])),
        ("bad_next", _queue([job], next_id="abc")),
        ("bad_state", _queue([{**job, "state": "exploded"}])),
        ("bad_kind", _queue([{**job, "kind": "paint"}])),
        ("bad_gpucount", _queue([{**job, "gpu_count": "two"}])),
        ("bad_gpus", _queue([{**job, "gpus": [-1]}])),
        ("dupe_ids", _queue([job, {**job, "preset": "other"}])),
        ("bad_overrides", _queue([{**job, "overrides": "network_dim=4"}])),
        ("bad_cancel_flag", _queue([{**job, "cancel_requested": "yes"}])),
    ):
        (folder / f"{name}.json").write_text(text)
    (folder / "adir.json").mkdir()


def write_study(root: Path, finished: Path) -> None:
    """A finished simulated search copied in (``finished``, built once), and copies with damaged results."""
    shutil.copytree(finished, root / "done_study")
    for name, damage in (
        ("study_results_corrupt", lambda d: (d / "trial_results.json").write_text("{bad")),
        ("study_results_list", lambda d: (d / "trial_results.json").write_text("[1, 2]")),
        ("study_results_foreign", lambda d: (d / "trial_results.json").write_text('{"hello": 1}')),
        ("study_results_not_utf8", lambda d: (d / "trial_results.json").write_bytes(b'{"x": "\xff"}')),
        ("study_results_trials_word", lambda d: (d / "trial_results.json").write_text(
            json.dumps({**json.loads((d / "trial_results.json").read_text()), "trials": "none"}))),
    ):
        shutil.copytree(finished, root / name)
        damage(root / name)
    shutil.copytree(finished, root / "study_results_dir")
    (root / "study_results_dir" / "trial_results.json").unlink()
    (root / "study_results_dir" / "trial_results.json").mkdir()


def write_dataset_image(root: Path) -> None:
    """One image-caption pair in the machine's dataset, so that train's pre-flight gets to the option."""
    synthetic_scene(3, (64, 64)).save(root / "data" / "10_luca" / "a.png")
    (root / "data" / "10_luca" / "a.txt").write_text("luca")
