"""The search's choices are written once: the command line offers what the study accepts."""

from __future__ import annotations

import pytest

from orchestrator.cli import build_parser
from orchestrator.search.choices import DEFAULT_STUDY_NAME, PRUNER_KINDS, SAMPLER_KINDS
from orchestrator.search.pruning import make_pruner
from orchestrator.search.sampling import make_sampler
from orchestrator.search.study import SearchSettings


def option(command: list[str], dest: str):
    parser = build_parser()
    for word in command:
        parser = next(a for a in parser._actions if a.dest.endswith("command") or a.dest == "command").choices[word]
    return next(a for a in parser._actions if a.dest == dest)


def test_cli_offers_every_pruner_and_sampler_the_study_builds():
    assert tuple(option(["search", "run"], "pruner").choices) == PRUNER_KINDS
    assert tuple(option(["search", "run"], "sampler").choices) == SAMPLER_KINDS
    for kind in PRUNER_KINDS:
        assert make_pruner(kind, max_epochs=12) is not None
    for kind in SAMPLER_KINDS:
        assert make_sampler(kind, seed=1) is not None


@pytest.mark.parametrize("verb", ["run", "worker"])
def test_cli_and_settings_share_the_default_study_name(verb):
    assert option(["search", verb], "study_name").default == DEFAULT_STUDY_NAME
    assert SearchSettings.__dataclass_fields__["study_name"].default == DEFAULT_STUDY_NAME
    assert option(["search", "run"], "pruner").default == SearchSettings.__dataclass_fields__["pruner"].default
