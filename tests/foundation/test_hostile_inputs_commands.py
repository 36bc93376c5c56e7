"""Hostile inputs to the commands around a run (issue 14): search spaces and options, run records,
evaluation merges, queue files, ``--set`` values and ``train`` options. Each is refused with one line
naming the key or file, a non-zero exit, no traceback, and every file that existed before left byte for
byte as it was. The fixture files are in ``hostile_command_fixtures``; the rest of the table (presets,
datasets, curation, storages) is ``test_hostile_inputs``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from orchestrator.cli import main
from tests.foundation import hostile_command_fixtures as cfx
from tests.foundation import test_hostile_inputs as table
from tests.foundation.test_hostile_inputs import PRESET, TINY_CLIP, _argv, _run_main, _snapshot

project = table.project  # the first table's project folder (presets, a finished run, references...)


@pytest.fixture(scope="session")
def finished_search(tmp_path_factory) -> Path:
    """One finished simulated search (2 trials), built once and copied into each case's folder."""
    output = tmp_path_factory.mktemp("finished_search") / "study"
    assert main(["search", "run", "--base-config", PRESET, "--executor", "simulated", "--output", str(output),
                 "--trials", "2"]) == 0
    return output


@pytest.fixture
def commands_project(project, finished_search):
    cfx.write_spaces(project)
    cfx.write_run_records(project)
    cfx.write_evaluated_runs(project)
    cfx.write_queues(project)
    cfx.write_study(project, finished_search)
    cfx.write_dataset_image(project)
    return project


def _search(*extra: str) -> list[str]:
    return ["search", "run", "--base-config", PRESET, "--executor", "simulated", "--output", "{tmp}/study",
            "--trials", "1", *extra]


def _worker(*extra: str) -> list[str]:
    return ["search", "worker", "--executor", "simulated", "--output", "{tmp}/w", "--storage",
            "sqlite:///{tmp}/done_study/optuna_study.db", *extra]


def _render_set(*assignments: str) -> list[str]:
    return ["config", "render", PRESET, *(a for x in assignments for a in ("--set", x)), "--out", "{tmp}/run"]


def _evaluate(run: str, *extra: str) -> list[str]:
    return ["evaluate", f"{{tmp}}/{run}/run", "--references", "{tmp}/finished/references", *TINY_CLIP, *extra]


def _queue(verb: str, queue: str, *extra: str) -> list[str]:
    return ["queue", verb, *extra, "--queue", f"{{tmp}}/q/{queue}.json"]


CASES: dict[str, tuple[list[str], str]] = {
    # a search space: wrong types, non-finite or out-of-range numbers, typos, values the base cannot train
    **{f"space_{name}": (_search("--space", f"{{tmp}}/{name}.toml"), key) for name, key in (
        ("sp_high_inf", "parameters.learning_rate.high"), ("sp_int_fraction", "parameters.network_dim.low"),
        ("sp_step_zero", "parameters.network_dim.step"), ("sp_step_negative", "parameters.learning_rate.step"),
        ("sp_step_word", "parameters.network_dim.step"), ("sp_log_string", "parameters.learning_rate.log"),
        ("sp_helper_string", "parameters.network_dim.helper"),
        ("sp_choices_nested", "parameters.network_dim.choices"),
        ("sp_choices_dupe", "parameters.network_dim.choices"),
        ("sp_choices_mixed", "parameters.network_dim.choices"),
        ("sp_choices_nan", "parameters.network_dropout.choices"),
        ("sp_unknown_param_key", "parameters.network_dim.hihg"), ("sp_unknown_table", "paramters"),
        ("sp_param_not_kohya", "parameters.netwrk_dim"), ("sp_param_type_mismatch", "parameters.network_dim"),
        ("sp_low_bool", "parameters.network_dim.low"), ("sp_search_not_table", "'search'"),
        ("sp_derived_not_table", "'derived'"), ("sp_derived_self", "derived.network_dim"),
        ("sp_neg_dim", "parameters.network_dim"), ("sp_lr_negative", "parameters.learning_rate"),
        ("sp_epochs_zero_choice", "parameters.max_train_epochs"))},
    # search options: refused by the parser or before the study exists
    "search_heartbeat_zero": (_search("--heartbeat", "0"), "--heartbeat"),
    "search_heartbeat_negative": (_search("--heartbeat", "-5"), "--heartbeat"),
    "search_grace_below_heartbeat": (_search("--heartbeat", "60", "--grace", "10"), "grace"),
    "search_grace_zero": (_search("--grace", "0"), "--grace"),
    "search_seed_negative": (_search("--seed", "-1"), "--seed"),
    "search_seed_huge": (_search("--seed", "99999999999999999999999"), "--seed"),
    "search_patience_negative": (_search("--patience", "-3"), "--patience"),
    "search_trials_huge": (_search("--trials", "99999999999999999999999"), "--trials"),
    "search_trials_word": (_search("--trials", "many"), "--trials"),
    "search_parallel_gpus_letters": (_search("--parallel-gpus", "a,b"), "parallel-gpus"),
    "search_parallel_gpus_negative": (_search("--parallel-gpus", "-1"), "parallel-gpus"),
    "search_parallel_gpus_twice": (_search("--parallel-gpus", "0,0"), "parallel-gpus"),
    "search_gpus_letters": (_search("--gpus", "a,b"), "--gpus"),
    "search_gpus_with_parallel_gpus": (_search("--parallel-gpus", "0,1", "--gpus", "0"), "not allowed with"),
    "worker_gpus_twice": (_worker("--gpus", "1,1"), "--gpus"),
    "train_gpus_commas_only": (["train", PRESET, "--out", "{tmp}/run", "--dry-run", "--gpus", ","], "--gpus"),
    "search_study_name_dotdot": (_search("--study-name", "../escaped"), "study-name"),
    "search_study_name_empty": (_search("--study-name", ""), "study-name"),
    "search_evaluation_config_missing": (_search("--evaluation-config", "{tmp}/nope.toml"), "nope.toml"),
    "search_evaluation_config_malformed": (_search("--evaluation-config", "{tmp}/malformed.toml"),
                                           "malformed.toml"),
    "search_device_bogus": (_search("--device", "toaster"), "--device"),
    "search_prior_is_its_own_folder": (["search", "run", "--base-config", PRESET, "--executor", "simulated",
                                        "--output", "{tmp}/done_study", "--trials", "4", "--prior",
                                        "{tmp}/done_study"], "prior"),
    "render_sd_scripts_a_file": (["config", "render", PRESET, "--sd-scripts", "{tmp}/a_file", "--out",
                                  "{tmp}/run"], "sd-scripts"),
    "render_sd_scripts_missing": (["config", "render", PRESET, "--sd-scripts", "{tmp}/nowhere", "--out",
                                   "{tmp}/run"], "sd-scripts"),
    "worker_heartbeat_zero": (_worker("--heartbeat", "0"), "--heartbeat"),
    "worker_grace_below_heartbeat": (_worker("--heartbeat", "30", "--grace", "30"), "grace"),
    # search status / analyze of a folder that is no search, or whose results file is damaged
    **{f"status_{name}": (["search", "status", f"{{tmp}}/{name}"], key) for name, key in (
        ("study_results_corrupt", "trial_results.json"), ("study_results_list", "trial_results.json"),
        ("study_results_foreign", "trial_results.json"), ("study_results_not_utf8", "trial_results.json"),
        ("study_results_trials_word", "trials"), ("study_results_dir", "trial_results.json"),
        ("no_study", "no_study"), ("a_file", "a_file"))},
    "status_watch_negative": (["search", "status", "{tmp}/done_study", "--watch", "-1"], "--watch"),
    "status_watch_zero": (["search", "status", "{tmp}/done_study", "--watch", "0"], "--watch"),
    "analyze_results_list": (["search", "analyze", "{tmp}/study_results_list"], "trial_results.json"),
    "analyze_results_foreign": (["search", "analyze", "{tmp}/study_results_foreign"], "trial_results.json"),
    "analyze_a_file": (["search", "analyze", "{tmp}/a_file"], "a_file"),
    "analyze_storage_garbage": (["search", "analyze", "{tmp}/done_study", "--storage", "not a url"], "storage"),
    "analyze_storage_other_db": (["search", "analyze", "{tmp}/done_study", "--storage",
                                  "sqlite:///{tmp}/not_a_db.db"], "not_a_db.db"),
    # run records edited by hand: right JSON, wrong types or values
    **{f"{verb}_{name}": ([verb, f"{{tmp}}/{name}", *extra], key) for verb, extra in (
        ("watch", ()), ("stop", ()), ("monitor", ("--once",))) for name, key in (
        ("run_epochs_word", "epochs"), ("run_status_number", "status"), ("run_status_bogus", "status"),
        ("run_pid_word", "pid"), ("run_name_number", "output_name"), ("run_checkpoints_list", "checkpoints"))},
    "monitor_interval_zero": (["monitor", "{tmp}/idle_run", "--interval", "0"], "--interval"),
    "stop_timeout_negative": (["stop", "{tmp}/idle_run", "--timeout", "-1"], "--timeout"),
    "watch_stall_minutes_nan": (["watch", "{tmp}/idle_run", "--stall-minutes", "nan"], "--stall-minutes"),
    # evaluate: a device torch has no name for, a merge that would drop a damaged scores.json
    "evaluate_device_bogus": (["evaluate", "{tmp}/finished/run", "--references", "{tmp}/finished/references",
                               "--clip-model", "tiny-clip", "--clip-weights", "random", "--device", "toaster"],
                              "--device"),
    "evaluate_epoch_over_corrupt_scores": (_evaluate("badscores", "--epoch", "2"), "scores.json"),
    "evaluate_epoch_over_scores_list": (_evaluate("scoreslist", "--epoch", "2"), "scores.json"),
    "evaluate_train_images_missing": (_evaluate("finished", "--train-images", "{tmp}/nope"), "nope"),
    "evaluate_train_images_a_file": (_evaluate("finished", "--train-images", "{tmp}/a_file"), "a_file"),
    # queue files edited by hand
    **{f"queue_list_{name}": (_queue("list", name), key) for name, key in (
        ("bad_id", "jobs.id"), ("bad_next", "next_id"), ("bad_state", "jobs.state"), ("bad_kind", "jobs.kind"),
        ("bad_gpucount", "jobs.gpu_count"), ("bad_gpus", "jobs.gpus"), ("dupe_ids", "jobs.id"),
        ("bad_overrides", "jobs.overrides"), ("bad_cancel_flag", "jobs.cancel_requested"), ("adir", "adir.json"))},
    "queue_cancel_bad_id": (_queue("cancel", "bad_id", "1"), "bad_id.json"),
    "queue_run_bad_state": (_queue("run", "bad_state", "--gpus", "0"), "bad_state.json"),
    "queue_run_poll_zero": (_queue("run", "ok", "--gpus", "0", "--poll", "0"), "--poll"),
    "queue_run_gpus_twice": (_queue("run", "ok", "--gpus", "0,0"), "gpus"),
    # queue add: the job is checked as its command would be, before it is queued
    "queue_add_missing_preset": (_queue("add", "ok", "no_such_preset"), "no_such_preset"),
    "queue_add_unknown_set_key": (_queue("add", "ok", PRESET, "--set", "netwrk_dim=4"), "netwrk_dim"),
    "queue_add_set_without_value": (_queue("add", "ok", PRESET, "--set", "network_dim"), "network_dim"),
    "queue_add_set_wrong_type": (_queue("add", "ok", PRESET, "--set", "network_dim=abc"), "network_dim"),
    "queue_add_unclosed_quote": (_queue("add", "ok", PRESET, "--args=--session 'x"), "args"),
    "queue_add_gpu_count_word": (_queue("add", "ok", PRESET, "--gpu-count", "two"), "--gpu-count"),
    # --set values sd-scripts takes without a word but cannot train with
    **{f"set_{name}": (_render_set(*assignments), key) for name, assignments, key in (
        ("dim_zero", ("network_dim=0",), "network_dim"), ("dim_negative", ("network_dim=-4",), "network_dim"),
        ("lr_nan", ("learning_rate=nan",), "learning_rate"), ("lr_inf", ("learning_rate=inf",), "learning_rate"),
        ("lr_negative", ("learning_rate=-1e-4",), "learning_rate"),
        ("epochs_zero", ("max_train_epochs=0",), "max_train_epochs"),
        ("batch_zero", ("train_batch_size=0",), "train_batch_size"),
        ("accumulation_zero", ("gradient_accumulation_steps=0",), "gradient_accumulation_steps"),
        ("resolution_negative", ("dataset.resolution=-512",), "resolution"),
        ("resolution_pair_zero", ("dataset.resolution=[512, 0]",), "resolution"),
        ("same_key_twice", ("network_dim=4", "network_dim=8"), "network_dim"))},
    "set_lr_nan_dry_run": (["train", PRESET, "--set", "learning_rate=nan", "--out", "{tmp}/run", "--dry-run",
                            "--allow-cpu"], "learning_rate: must be a finite number"),
    "set_dim_zero_over_finished_run": (["train", PRESET, "--set", "network_dim=0", "--out", "{tmp}/finished/run",
                                        "--allow-cpu"], "network_dim"),
    # train options
    "train_session_with_colon": (["train", PRESET, "--out", "{tmp}/finished/run", "--allow-cpu", "--session",
                                  "a:b.c"], "session"),
    "train_session_empty": (["train", PRESET, "--out", "{tmp}/finished/run", "--allow-cpu", "--session", ""],
                            "session"),
    "train_min_free_vram_nan": (["train", PRESET, "--out", "{tmp}/run", "--dry-run", "--allow-cpu",
                                 "--min-free-vram", "nan"], "--min-free-vram"),
    "train_stall_minutes_negative": (["train", PRESET, "--out", "{tmp}/run", "--dry-run", "--allow-cpu",
                                      "--stall-minutes", "-5"], "--stall-minutes"),
}


def _unchanged(before: dict[str, str], after: dict[str, str]) -> bool:
    """Every file that was there is byte for byte the same, and nothing new; lock files (a queue's, a search's
    resume claim) are left out on both sides: they hold no content, only a lock."""
    def content(files: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in files.items() if not k.endswith(".lock")}
    return content(after) == content(before)


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_command_input_is_refused_clearly_and_changes_nothing(name, commands_project, capsys):
    argv, named = CASES[name]
    before = _snapshot(commands_project)
    code = _run_main(_argv(argv, commands_project, 0))
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code != 0, output
    assert named in output, output
    assert "Traceback" not in output
    assert _unchanged(before, _snapshot(commands_project))
    shutil.rmtree(commands_project / "study", ignore_errors=True)


def test_the_real_space_still_takes_the_base_preset(commands_project, capsys):
    """The checks refuse what they should and nothing more: the shipped space on its base preset runs."""
    argv = _argv(_search("--space", "configs/search/luca_tpe_v2_1.toml"), commands_project, 0)
    assert _run_main(argv) == 0, capsys.readouterr().err


def test_the_table_covers_at_least_thirty_new_inputs():
    assert len(CASES) >= 30
