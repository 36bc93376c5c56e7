"""A study in a journal file (``--parallel-gpus``) is read by every reader, not only the search loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.search.analyze import analyze
from orchestrator.search.prior import load_prior, plan_prior
from orchestrator.search.simulator import SimulatedExecutor
from orchestrator.search.study import Search, SearchSettings
from orchestrator.search.surfaces import QuadraticSurface

from .conftest import small_base_config

JOURNAL = "optuna_journal.log"
SIZE = {"images": 100, "images_per_epoch": 1000}


def run_journal_search(output: Path, space, *, trials: int, seed: int, study_name: str, prior=None) -> Search:
    settings = SearchSettings(space=space, base_config=small_base_config(), output=output, trials=trials, seed=seed,
                              study_name=study_name, pruner="none", patience=0, prior=prior, dataset=SIZE,
                              storage_url=f"journal:///{(output / JOURNAL).resolve()}")
    search = Search(settings, SimulatedExecutor(surface=QuadraticSurface(seed=0), record_progress=False))
    search.run()
    return search


@pytest.fixture
def journal_folder(tmp_path, short_space) -> Path:
    output = tmp_path / "parallel"
    run_journal_search(output, short_space, trials=8, seed=0, study_name="parallel")
    assert (output / JOURNAL).is_file() and not (output / "optuna_study.db").exists()
    return output


def test_analyze_of_a_journal_study_has_its_parameter_importances(journal_folder) -> None:
    analysis = analyze(journal_folder)
    assert not [note for note in analysis.notes if "unavailable" in note], analysis.notes
    assert analysis.importances and all(0.0 <= value <= 1.0 for value in analysis.importances.values())


def test_a_journal_study_is_a_prior_and_its_analysis_has_the_prior_section(tmp_path, journal_folder,
                                                                           short_space) -> None:
    prior = load_prior(str(journal_folder))
    assert prior.study_name == "parallel" and len(prior.complete) == 8
    plan = plan_prior(prior, short_space, small_base_config(), dataset=SIZE)
    output = tmp_path / "next"
    run_journal_search(output, short_space, trials=6, seed=1, study_name="next", prior=plan)
    analysis = analyze(output)
    assert not [note for note in analysis.notes if "unavailable" in note], analysis.notes
    assert analysis.prior is not None and analysis.prior["study"] == "parallel"


def test_a_journal_study_is_a_prior_by_its_url_too(journal_folder) -> None:
    url = f"journal:///{(journal_folder / JOURNAL).resolve()}"
    assert len(load_prior(url, "parallel").complete) == 8


def test_a_journal_whose_last_line_was_torn_is_repaired_on_open_and_the_search_resumes(
        tmp_path, short_space, capsys) -> None:
    output = tmp_path / "torn"
    run_journal_search(output, short_space, trials=3, seed=0, study_name="torn")
    journal = output / JOURNAL
    whole = journal.read_bytes()
    journal.write_bytes(whole + b'{"op_code": 5, "worker_id": "abc", "trial_id": 3, "us')  # power cut mid-append
    search = run_journal_search(output, short_space, trials=5, seed=0, study_name="torn")  # appends, then replays
    assert "last line was cut off" in capsys.readouterr().err
    backups = list(output.glob(f"{JOURNAL}.torn-*"))
    assert len(backups) == 1 and backups[0].read_bytes().endswith(b'"us')
    assert journal.read_bytes().startswith(whole) and len(search.study.trials) >= 5
    assert len(load_prior(str(output)).complete) >= 5  # a later reader replays it without "malformed JSON"


def test_a_torn_line_that_ends_in_a_newline_is_cut_too_and_a_whole_journal_is_left_alone(tmp_path) -> None:
    from orchestrator.search.storage import repair_torn_journal

    journal = tmp_path / "study.log"
    journal.write_bytes(b'{"op_code": 0}\n{"op_code": 1}\n')
    assert repair_torn_journal(journal) is None and journal.read_bytes() == b'{"op_code": 0}\n{"op_code": 1}\n'
    journal.write_bytes(b'{"op_code": 0}\n{"op_co\x00\x00\n')
    warnings: list[str] = []
    backup = repair_torn_journal(journal, warn=warnings.append)
    assert journal.read_bytes() == b'{"op_code": 0}\n' and backup is not None
    assert backup.read_bytes() == b'{"op_co\x00\x00\n' and str(journal) in warnings[0]


def test_damage_before_the_last_line_is_refused_naming_the_journal(tmp_path, journal_folder) -> None:
    from orchestrator.common.errors import UserInputError

    journal = journal_folder / JOURNAL
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:3] + [b"{not json\n"] + lines[3:]))
    with pytest.raises(UserInputError, match="cannot open the study storage") as refused:
        load_prior(str(journal_folder))
    assert str(journal) in str(refused.value)


def test_a_damaged_sqlite_study_is_refused_naming_the_file(tmp_path, short_space) -> None:
    from orchestrator.common.errors import UserInputError
    from orchestrator.search.storage import SQLITE_FILE, load_study, sqlite_url

    output = tmp_path / "sqlite"
    settings = SearchSettings(space=short_space, base_config=small_base_config(), output=output, trials=2, seed=0,
                              study_name="s", pruner="none", patience=0)
    Search(settings, SimulatedExecutor(surface=QuadraticSurface(seed=0), record_progress=False)).run()
    database = output / SQLITE_FILE
    data = bytearray(database.read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)  # the header survives, every page after it is garbage
    database.write_bytes(bytes(data))
    for name in ("optuna_study.db-wal", "optuna_study.db-shm"):
        (output / name).unlink(missing_ok=True)
    with pytest.raises(UserInputError) as refused:
        load_study(sqlite_url(database), "s")
    assert str(database) in str(refused.value)
