"""`votes page` and `votes apply` on run folders: a known taste is recovered, bad vote files are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.evaluate import load_evaluation_config
from orchestrator.verdict import select_candidates, write_comparison_page

from .scored_run import METRICS, make_scored_run, random_metric_rows, simulated_choices, write_votes

HIDDEN = {"identity": 0.45, "character_variety": 0.1, "style_consistency": 0.25, "prompt_adherence": 0.05,
          "technical_quality": 0.15}
SEEDS = tuple(range(100, 112))


def _page(run: Path, top: int, **kwargs):
    candidates = select_candidates(run, top=top)
    return candidates, write_comparison_page(candidates, **kwargs)


def _apply_simulated(root: Path, seed: int, config: Path) -> tuple[list[dict], dict, Path]:
    rows = random_metric_rows(10, seed)
    # One checkpoint the person clearly prefers (about 1.8 logits ahead of the next under HIDDEN).
    utility = [sum(HIDDEN[m] * row[m] for m in METRICS) for row in rows]
    favourite = max(range(10), key=utility.__getitem__)
    lead = sorted(utility)[-1] - sorted(utility)[-2]
    rows[favourite] = {m: v + max(0.0, 0.12 - lead) / 0.7 * (m in ("identity", "style_consistency"))
                       for m, v in rows[favourite].items()}
    run = make_scored_run(root, rows, seeds=SEEDS, colour_seed=seed)
    _, page = _page(run, top=10, max_comparisons=600)
    assert page.comparisons == 45 * len(SEEDS)
    entries = simulated_choices(page.page.parent, HIDDEN, sharpness=15.0, seed=seed)
    votes = write_votes(page.page.parent / "votes.json", page.set_id, entries)
    assert main(["votes", "apply", str(votes), "--write-config", str(config), "--resamples", "150"]) == 0
    return rows, json.loads((page.page.parent / "verdict.json").read_text()), run


@pytest.mark.slow
def test_votes_from_a_hidden_weighting_recover_the_preferred_checkpoint_and_the_weights(tmp_path, capsys):
    # The automatic total weighs the metrics equally; the person weighs them as HIDDEN (plus Davidson noise).
    covered = []
    for seed in range(4):
        config = tmp_path / f"mine_{seed}.toml"
        rows, verdict, run = _apply_simulated(tmp_path / f"run_{seed}", seed, config)
        preferred = max(range(10), key=lambda n: sum(HIDDEN[m] * rows[n][m] for m in METRICS))
        assert verdict["ranking"][0]["candidate"] == f"epoch-{preferred + 1}"
        assert verdict["chosen"]["candidate"] == f"epoch-{preferred + 1}" and verdict["chosen"]["by"] == "person"
        fitted = verdict["fitted_weights"]
        for metric, weight in HIDDEN.items():
            low, high = fitted["interval"][metric]
            covered.append(low <= weight <= high)
            assert low <= fitted["weights"][metric] <= high
            assert high - low < 0.3  # an interval that says something
        loaded = load_evaluation_config(config)
        assert loaded.weights == pytest.approx(fitted["weights"], abs=2e-3)
        best = json.loads((run / "evaluation" / "best.json").read_text())
        assert best["reason"] == "highest total"  # evaluation's fields are kept
        assert best["verdict"]["candidate"] == verdict["chosen"]["candidate"]
    # 95% bootstrap intervals (about 90% coverage measured over more seeds): a few of 20 may miss by chance;
    # more would mean the intervals claim a certainty the votes do not give.
    assert sum(covered) >= 17, covered
    assert "chosen: epoch-" in capsys.readouterr().out


def test_agreement_names_the_metric_that_agreed_and_the_one_that_did_not(tmp_path):
    # The person likes identity only; technical quality runs against identity over these epochs.
    rows = [{"identity": 0.2 + 0.07 * n, "character_variety": 0.5, "style_consistency": 0.3 + 0.01 * ((n * 7) % 5),
             "prompt_adherence": 0.6, "technical_quality": 0.9 - 0.06 * n} for n in range(8)]
    run = make_scored_run(tmp_path / "run", rows, seeds=SEEDS[:6])
    _, page = _page(run, top=8, max_comparisons=400)
    entries = simulated_choices(page.page.parent, {"identity": 1.0}, sharpness=40.0)
    votes = write_votes(page.page.parent / "votes.json", page.set_id, entries)
    assert main(["votes", "apply", str(votes), "--resamples", "60"]) == 0
    verdict = json.loads((page.page.parent / "verdict.json").read_text())
    by_measure = {a["measure"]: a for a in verdict["agreement"]}
    assert by_measure["identity"]["verdict"] == "agrees" and by_measure["identity"]["top1"]
    assert by_measure["technical_quality"]["verdict"] == "disagrees"
    assert by_measure["character_variety"]["kendall_tau"] is None  # equal for every epoch
    assert "character_variety" in verdict["fitted_weights"]["unidentified"]
    assert verdict["ranking"][0]["candidate"] == verdict["chosen"]["candidate"] == "epoch-8"
    report = (page.page.parent / "verdict.html").read_text()
    assert "disagrees" in report and "epoch-8" in report


def test_few_votes_that_do_not_separate_the_top_keep_the_metrics_choice(tmp_path):
    rows = random_metric_rows(4, 5)
    run = make_scored_run(tmp_path / "run", rows)
    candidates, page = _page(run, top=4)
    manifest = json.loads((page.page.parent / "manifest.json").read_text())
    entries = [{"id": c["token"], "choice": "tie"} for c in manifest["comparisons"][:12]]
    votes = write_votes(page.page.parent / "votes.json", page.set_id, entries)
    assert main(["votes", "apply", str(votes), "--resamples", "60"]) == 0
    verdict = json.loads((page.page.parent / "verdict.json").read_text())
    metrics_first = max(candidates.candidates, key=lambda c: c.total).id
    assert verdict["chosen"]["by"] == "metrics" and verdict["chosen"]["candidate"] == metrics_first
    assert "do not separate" in verdict["chosen"]["reason"]


def _refusal(capsys, argv) -> str:
    assert main(argv) != 0
    return capsys.readouterr().err


def test_votes_of_another_run_are_refused_naming_the_file(tmp_path, capsys):
    rows = random_metric_rows(3, 0)
    _, page_a = _page(make_scored_run(tmp_path / "a", rows), top=3)
    _, page_b = _page(make_scored_run(tmp_path / "b", rows, colour_seed=9), top=3)
    manifest_a = json.loads((page_a.page.parent / "manifest.json").read_text())
    foreign = write_votes(page_b.page.parent / "votes.json", page_a.set_id,
                          [{"id": c["token"], "choice": "left"} for c in manifest_a["comparisons"]])
    message = _refusal(capsys, ["votes", "apply", str(foreign)])
    assert str(foreign) in message and "another set of candidates" in message


def test_a_tampered_or_thin_votes_file_is_refused_and_nothing_is_written(tmp_path, capsys):
    run = make_scored_run(tmp_path / "run", random_metric_rows(3, 1))
    _, page = _page(run, top=3)
    folder = page.page.parent
    manifest = json.loads((folder / "manifest.json").read_text())
    entries = [{"id": c["token"], "choice": "left"} for c in manifest["comparisons"]]
    votes = write_votes(folder / "votes.json", page.set_id, entries)
    data = json.loads(votes.read_text())
    data["votes"][0]["choice"] = "right"  # flipped after export
    votes.write_text(json.dumps(data))
    assert "checksum" in _refusal(capsys, ["votes", "apply", str(votes)])
    write_votes(votes, page.set_id, [*entries, {"id": "0123456789ab", "choice": "left"}])
    assert "not on this page" in _refusal(capsys, ["votes", "apply", str(votes)])
    write_votes(votes, page.set_id, entries[:4])
    message = _refusal(capsys, ["votes", "apply", str(votes)])
    assert str(votes) in message and "4 usable votes" in message
    assert not (folder / "verdict.json").exists()
    assert "verdict" not in json.loads((run / "evaluation" / "best.json").read_text())


def test_votes_on_a_run_scored_again_since_the_page_are_refused(tmp_path, capsys):
    run = make_scored_run(tmp_path / "run", random_metric_rows(3, 2))
    _, page = _page(run, top=3)
    manifest = json.loads((page.page.parent / "manifest.json").read_text())
    votes = write_votes(page.page.parent / "votes.json", page.set_id,
                        [{"id": c["token"], "choice": "left"} for c in manifest["comparisons"]])
    scores = json.loads((run / "evaluation" / "scores.json").read_text())
    scores["epochs"]["1"]["metrics"]["identity"] += 0.1
    (run / "evaluation" / "scores.json").write_text(json.dumps(scores))
    message = _refusal(capsys, ["votes", "apply", str(votes), "--min-votes", "3"])
    assert "changed since the page was written" in message


def test_page_command_prints_how_to_apply_and_hides_names(tmp_path, capsys):
    run = make_scored_run(tmp_path / "run", random_metric_rows(4, 3))
    assert main(["votes", "page", str(run), "--top", "2", "--include", "epoch-1"]) == 0
    out = capsys.readouterr().out
    assert "lora-pipeline votes apply" in out
    page = (run / "verdict" / "compare.html").read_text()
    assert "epoch" not in page.replace("epoch-", "") or "epoch-" not in page
    assert "luca_e0000" not in page and "safetensors" not in page
    manifest = json.loads((run / "verdict" / "manifest.json").read_text())
    assert len(manifest["candidates"]) == 3 and "epoch-1" in {c["id"] for c in manifest["candidates"]}


def test_quickstart_ends_by_offering_the_page_and_the_apply_command(tmp_path, capsys):
    from orchestrator.project import RunResult, StageOutcome
    from orchestrator.quickstart.chain import QuickstartResult, StageTiming, print_where
    from orchestrator.quickstart.state import QuickstartOptions, QuickstartState

    run = make_scored_run(tmp_path / "run", random_metric_rows(4, 4))
    page = write_comparison_page(select_candidates(run, top=5))
    facts = {"votes_page": str(page.page), "apply_command": f"lora-pipeline votes apply {page.page.parent / 'votes.json'}"}
    state = QuickstartState(options=QuickstartOptions(out=tmp_path, progress=False), paths=None,  # type: ignore[arg-type]
                            run=RunResult(folder=tmp_path, outcomes=[StageOutcome("verdict", "done", facts=facts)]))
    print_where(QuickstartResult(out=tmp_path, stages=[StageTiming("run", 0.1, "ok", {})], state=state))
    out = capsys.readouterr().out.replace("\n", "")
    assert "lora-pipeline votes apply" in out and "compare.html" in out


def test_a_search_offers_its_top_epochs_across_trials_and_keeps_its_choice_beside_the_page(tmp_path):
    search = tmp_path / "search"
    trials = []
    for number in (0, 1, 2):
        directory = make_scored_run(search / "trials" / f"trial_{number:04d}", random_metric_rows(3, 10 + number),
                                    colour_seed=number)
        trials.append({"number": number, "outcome": "complete", "directory": str(directory)})
    trials.append({"number": 3, "outcome": "rejected", "directory": None})
    search.joinpath("trial_results.json").write_text(json.dumps({"trials": trials}))
    everything = [(json.loads((Path(t["directory"]) / "evaluation" / "scores.json").read_text()), t["number"])
                  for t in trials[:3]]
    totals = sorted(((e["total"], f"trial-{n:04d}/epoch-{e['epoch']}") for data, n in everything
                     for e in data["epochs"].values()), reverse=True)
    candidates, page = _page(search, top=4)
    assert [c.id for c in candidates.candidates] == [name for _, name in totals[:4]]
    entries = simulated_choices(page.page.parent, HIDDEN, sharpness=60.0)
    votes = write_votes(page.page.parent / "votes.json", page.set_id, entries)
    assert main(["votes", "apply", str(votes), "--resamples", "40"]) == 0
    best = json.loads((search / "verdict" / "best.json").read_text())
    verdict = json.loads((search / "verdict" / "verdict.json").read_text())
    assert best["verdict"]["candidate"] == verdict["chosen"]["candidate"]
    assert best["checkpoint"] == candidates.by_id(best["verdict"]["candidate"]).checkpoint


def test_a_search_whose_trials_train_in_their_run_folder_offers_their_epochs(tmp_path):
    """The search trains a trial in ``trials/trial_N/run/``: its scores are found there (the page was empty)."""
    search = tmp_path / "search"
    trials = []
    for number in (0, 1):
        make_scored_run(search / "trials" / f"trial_{number:04d}" / "run", random_metric_rows(3, 20 + number),
                        colour_seed=number)
        trials.append({"number": number, "outcome": "complete",
                       "directory": str(search / "trials" / f"trial_{number:04d}")})
    search.joinpath("trial_results.json").write_text(json.dumps({"trials": trials}))
    candidates = select_candidates(search, top=4)
    assert len(candidates.candidates) == 4
    assert {c.id.split("/")[0] for c in candidates.candidates} == {"trial-0000", "trial-0001"}
