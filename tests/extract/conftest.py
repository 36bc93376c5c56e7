from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.toy import ToyFilm, generate_toy_film


@pytest.fixture(scope="session")
def toy_film(tmp_path_factory: pytest.TempPathFactory) -> ToyFilm:
    return generate_toy_film(tmp_path_factory.mktemp("film"))


@pytest.fixture(scope="session")
def film_truth(toy_film: ToyFilm) -> dict:
    return json.loads(Path(toy_film.truth).read_text())
