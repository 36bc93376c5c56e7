"""A search started from a finished one: loading the prior, what is carried over, how it is outgrown."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from orchestrator.common.errors import UserInputError
from orchestrator.search.analyze import analyze
from orchestrator.search.merge import flatten_training_tables, merge_trial_config
from orchestrator.search.prior import PriorStudy, PriorTrial, load_prior, plan_prior, prior_from_study
from orchestrator.search.prior_sampler import PriorShapedTPESampler
from orchestrator.search.simulator import SimulatedExecutor
from orchestrator.search.space import parse_search_space
from orchestrator.search.study import Search, SearchSettings
from orchestrator.search.surfaces import QuadraticSurface
from orchestrator.search.vocabulary import DATASET_ATTR, PRIOR_ATTR

from .conftest import small_base_config

LUCA_SIZE = {"images": 100, "images_per_epoch": 1000}


def run_search(output: Path, space, *, trials: int, seed: int, surface_seed: int, prior=None,
               dataset=LUCA_SIZE, study_name: str = "luca") -> Search:
    settings = SearchSettings(space=space, base_config=small_base_config(), output=output, trials=trials,
                              seed=seed, study_name=study_name, pruner="none", patience=0, prior=prior,
                              dataset=dataset)
    search = Search(settings, SimulatedExecutor(surface=QuadraticSurface(seed=surface_seed), record_progress=False))
    search.run()
    return search


@pytest.fixture
def luca_folder(tmp_path, short_space) -> Path:
    """A finished search of 'Luca' on the quadratic surface (seed 0): the prior of the tests."""
    output = tmp_path / "luca"
    run_search(output, short_space, trials=8, seed=0, surface_seed=0)
    return output


def test_a_prior_is_loaded_from_its_search_folder_with_the_study_name_of_its_results(luca_folder) -> None:
    prior = load_prior(str(luca_folder))
    assert prior.study_name == "luca" and prior.label == str(luca_folder)
    values = [t.value for t in prior.complete]
    assert len(values) == 8 and values == sorted(values, reverse=True)  # best first
    assert prior.dataset == LUCA_SIZE
    assert "learning_rate" in prior.complete[0].flat and "network_alpha" in prior.complete[0].flat


def test_a_prior_is_loaded_from_a_storage_url_and_a_study_name(luca_folder) -> None:
    url = f"sqlite:///{luca_folder / 'optuna_study.db'}"
    assert len(load_prior(url, "luca").complete) == 8
    with pytest.raises(UserInputError, match="--prior-study NAME"):
        load_prior(url)
    with pytest.raises(UserInputError, match=r"no study named 'alberto'.*studies: luca"):
        load_prior(url, "alberto")


def test_a_missing_prior_names_the_folder_or_file(tmp_path) -> None:
    with pytest.raises(UserInputError, match="prior search folder not found") as missing:
        load_prior(str(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in str(missing.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="no optuna_study.db") as no_db:
        load_prior(str(tmp_path / "empty"))
    assert str(tmp_path / "empty") in str(no_db.value)
    with pytest.raises(UserInputError, match="database not found"):
        load_prior(f"sqlite:///{tmp_path / 'none.db'}", "luca")


def test_a_prior_without_a_completed_trial_is_refused(tmp_path, short_space) -> None:
    output = tmp_path / "luca"
    run_search(output, short_space, trials=0, seed=0, surface_seed=0)
    with pytest.raises(UserInputError, match="has no completed trial") as empty:
        load_prior(str(output))
    assert str(output) in str(empty.value)


def test_a_prior_that_shares_no_parameter_with_the_new_space_is_refused(luca_folder) -> None:
    other = parse_search_space({"parameters": {"noise_offset": {"kind": "float", "low": 0.0, "high": 0.1}}})
    with pytest.raises(UserInputError, match="none of which is a parameter of the new space"):
        plan_prior(load_prior(str(luca_folder)), other, small_base_config(), dataset=None)


def test_epochs_are_scaled_to_the_new_dataset_when_both_sizes_are_known(luca_folder, short_space) -> None:
    prior = load_prior(str(luca_folder))
    # Twice the images per epoch here: a prior run of 8 epochs becomes 4 (the same images shown in training).
    plan = plan_prior(prior, short_space, small_base_config(), dataset={"images": 200, "images_per_epoch": 2000})
    by_trial = {t.number: t for t in prior.complete}
    for config in plan.configs:
        there = int(by_trial[config.trial].flat["max_train_epochs"])
        assert config.params["max_train_epochs"] == min((4, 6, 8), key=lambda e: abs(e - there / 2))
    assert "x 0.50" in plan.epochs_rule
    unknown = plan_prior(prior, short_space, small_base_config(), dataset=None)
    assert all("max_train_epochs" not in config.params for config in unknown.configs)
    assert "left to the search" in unknown.epochs_rule
    assert all("learning_rate" in config.params for config in unknown.configs)


def test_a_prior_config_that_breaks_a_safety_rule_here_is_not_enqueued(short_space) -> None:
    risky = {"network_dim": 128, "network_alpha": 64, "network_dropout": 0.05, "learning_rate": 1.15e-4,
             "unet_lr": 1.15e-4, "text_encoder_lr": 5e-5, "lr_scheduler": "cosine", "max_train_epochs": 8,
             "min_snr_gamma": 5, "optimizer_type": "AdamW", "gradient_accumulation_steps": 1,
             "lr_warmup_steps": 50}
    safe = {**risky, "learning_rate": 8e-5, "unet_lr": 8e-5}
    prior = PriorStudy("test", "luca", (PriorTrial(0, TrialState.COMPLETE, 0.8, risky, {}),
                                        PriorTrial(1, TrialState.COMPLETE, 0.7, safe, {})),
                       short_space.parameter_names, LUCA_SIZE)
    plan = plan_prior(prior, short_space, small_base_config(), dataset=LUCA_SIZE)
    assert [config.trial for config in plan.configs] == [1]
    assert any("prior trial 0 breaks a safety rule" in note for note in plan.notes)
    assert len(plan.shadow) == 2  # the risky one still tells the start-up where the prior was


def test_prior_configs_are_trained_and_scored_again_not_given_the_scores_there(tmp_path, luca_folder,
                                                                              short_space) -> None:
    plan = plan_prior(load_prior(str(luca_folder)), short_space, small_base_config(), dataset=LUCA_SIZE)
    search = run_search(tmp_path / "alberto", short_space, trials=4, seed=1, surface_seed=7, prior=plan,
                        study_name="alberto")
    trials = sorted(search.study.trials, key=lambda t: t.number)
    configs = [t for t in trials if (t.user_attrs.get(PRIOR_ATTR) or {}).get("kind") == "config"]
    assert [t.number for t in configs] == [0, 1]
    alberto = QuadraticSurface(seed=7)
    for trial, config in zip(configs, plan.configs, strict=True):
        assert {k: trial.params[k] for k in config.params} == config.params
        assert trial.user_attrs["outcome"] == "complete" and trial.user_attrs["gpu_seconds"] > 0
        assert trial.value != pytest.approx(config.score_there)
        epoch = trial.user_attrs["best_epoch"]
        config = merge_trial_config(small_base_config(), short_space.training_overrides(trial.params))
        flat = {**flatten_training_tables(config), **trial.params}
        assert trial.value == pytest.approx(alberto.observe(flat, epoch))  # this character's own score
    assert search.study.user_attrs[DATASET_ATTR] == LUCA_SIZE
    assert search.study.user_attrs[PRIOR_ATTR]["study"] == "luca"


def _synthetic_prior(space, *, trials: int = 24) -> PriorStudy:
    """A prior whose good region is unmistakable: only dim-64 runs scored well there."""
    import random

    from orchestrator.search.optuna_adapter import quiet_optuna_notices

    quiet_optuna_notices()
    rng = random.Random(3)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(trials):
        trial = study.ask()
        params = space.sample(trial)
        trial.set_user_attr("overrides", space.training_overrides(params))
        study.tell(trial, (0.8 if params["network_dim"] == 64 else 0.6) + rng.uniform(0, 0.01))
    return prior_from_study(study, "synthetic")


def test_the_start_up_follows_the_priors_good_region_until_outgrown(short_space) -> None:
    plan = plan_prior(_synthetic_prior(short_space), short_space, small_base_config(), dataset=None, configs=0)
    sampler = PriorShapedTPESampler(plan, outgrow_after=8, n_startup_trials=5, multivariate=True, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    drawn, after = [], []
    for number in range(14):
        trial = study.ask()
        params = short_space.sample(trial)
        kind = (study.trials[number].user_attrs.get(PRIOR_ATTR) or {}).get("kind")
        (drawn if kind == "draw" else after).append((number, params["network_dim"]))
        trial.set_user_attr("outcome", "complete")
        study.tell(trial, 0.5 + 0.01 * number)  # here dim does not matter
    assert [number for number, _ in drawn] == list(range(8))  # the prior shapes the first 8 trained trials only
    assert [number for number, _ in after] == list(range(8, 14))
    assert sum(dim == 64 for _, dim in drawn) >= 6  # random would give about a third


def test_rejected_trials_do_not_count_toward_outgrowing_the_prior(short_space) -> None:
    plan = plan_prior(_synthetic_prior(short_space), short_space, small_base_config(), dataset=None, configs=0)
    study = optuna.create_study(direction="maximize", sampler=PriorShapedTPESampler(
        plan, outgrow_after=2, n_startup_trials=2, multivariate=True, seed=0))
    for _ in range(4):
        trial = study.ask()
        short_space.sample(trial)
        trial.set_user_attr("outcome", "rejected")
        study.tell(trial, state=TrialState.PRUNED)
    study.ask()
    assert study.trials[-1].user_attrs[PRIOR_ATTR]["kind"] == "draw"  # four rejections, still in the prior phase


def test_analyze_says_what_came_from_the_prior_and_whether_it_held(tmp_path, luca_folder, short_space) -> None:
    plan = plan_prior(load_prior(str(luca_folder)), short_space, small_base_config(), dataset=LUCA_SIZE)
    output = tmp_path / "alberto"
    run_search(output, short_space, trials=8, seed=1, surface_seed=0, prior=plan, study_name="alberto")
    analysis = analyze(output)
    prior = analysis.prior
    assert prior is not None and prior["study"] == "luca" and prior["source"] == str(luca_folder)
    results = json.loads((output / "trial_results.json").read_text())
    values = {entry["number"]: entry["value"] for entry in results["trials"]}
    assert [(c["rank_there"], c["score_there"], c["score_here"]) for c in prior["configs"]] == [
        (c.rank, c.score_there, values[n]) for c, n in zip(plan.configs, (0, 1), strict=True)]
    assert prior["correlation"] is not None and -1.0 <= prior["correlation"] <= 1.0
    assert prior["best_from"] in {"prior config 1", "prior config 2", "prior draw", "this study's own TPE"}
    assert isinstance(prior["held"], bool) and "prior" in prior["verdict"]
    summary = (output / "analysis" / "summary.md").read_text()
    assert "## Prior study" in summary and "| trial here | rank there |" in summary
    assert json.loads((output / "analysis" / "analysis.json").read_text())["prior"]["study"] == "luca"


def test_a_study_without_a_prior_has_no_prior_section(luca_folder) -> None:
    assert analyze(luca_folder).prior is None


def test_the_dataset_size_is_images_and_images_times_repeats_over_the_subsets(tmp_path) -> None:
    from PIL import Image

    from orchestrator.search.dataset_size import dataset_size

    for folder, count in (("10_luca", 3), ("2_luca_far", 2)):
        (tmp_path / folder).mkdir()
        for index in range(count):
            Image.new("RGB", (8, 8)).save(tmp_path / folder / f"{index}.png")
    document = {"datasets": [{"subsets": [{"image_dir": str(tmp_path / "10_luca"), "num_repeats": 10},
                                          {"image_dir": str(tmp_path / "2_luca_far"), "num_repeats": 2}]}]}
    assert dataset_size(document) == {"images": 5, "images_per_epoch": 34}
    assert dataset_size({"datasets": [{"subsets": [{"image_dir": str(tmp_path / "none")}]}]}) is None


def test_the_prior_a_study_stored_rebuilds_its_shadow_trials_and_good_region(luca_folder, short_space) -> None:
    from orchestrator.search.prior import plan_from_study_attr

    plan = plan_prior(load_prior(str(luca_folder)), short_space, small_base_config(), dataset=LUCA_SIZE)
    rebuilt = plan_from_study_attr(json.loads(json.dumps(plan.study_attr())), short_space)
    assert rebuilt is not None and rebuilt.configs == []  # the configs were enqueued when the study was made
    assert [(t.params, t.state, t.value, t.intermediate_values) for t in rebuilt.shadow] == \
        [(t.params, t.state, t.value, t.intermediate_values) for t in plan.shadow]
    assert rebuilt.good_region == plan.good_region and rebuilt.study_name == "luca"
    assert plan_from_study_attr(None, short_space) is None


def test_a_resume_without_prior_draws_from_the_prior_the_study_was_made_with(tmp_path, luca_folder,
                                                                             short_space) -> None:
    plan = plan_prior(load_prior(str(luca_folder)), short_space, small_base_config(), dataset=LUCA_SIZE)
    output = tmp_path / "alberto"
    first = run_search(output, short_space, trials=4, seed=1, surface_seed=7, prior=plan, study_name="alberto")
    made = len(first.study.trials)
    resumed = run_search(output, short_space, trials=7, seed=1, surface_seed=7, prior=None, study_name="alberto")
    later = [t for t in resumed.study.trials if t.number >= made]
    assert len([t for t in later if t.user_attrs.get("outcome") == "complete"]) == 3
    # Fewer than prior_sampler.OUTGROW_AFTER trained trials in all: every draw is still shaped by the prior.
    assert [(t.user_attrs.get(PRIOR_ATTR) or {}).get("kind") for t in later] == ["draw"] * len(later)
