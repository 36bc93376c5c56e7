"""Storage URLs in logs and result files never show a password, whatever the URL's shape."""

from __future__ import annotations

import pytest

from orchestrator.search.storage import redact_url


@pytest.mark.parametrize("url, shown", [
    ("postgresql+psycopg2://luca:p%40ss%3Aw0rd@db.lan:5432/optuna?sslmode=require",
     "postgresql+psycopg2://luca:***@db.lan:5432/optuna?sslmode=require"),
    ("postgresql://luca@db/optuna", "postgresql://luca@db/optuna"),
    ("mysql://root:hunter2@127.0.0.1/optuna", "mysql://root:***@127.0.0.1/optuna"),
    ("sqlite:////abs/search/optuna_study.db", "sqlite:////abs/search/optuna_study.db"),
    ("optuna_study.db", "optuna_study.db"),
])
def test_password_is_hidden_and_the_rest_kept(url, shown):
    assert redact_url(url) == shown


def test_a_string_that_is_no_url_but_may_hold_credentials_is_hidden():
    assert "s3cret" not in redact_url("luca:s3cret@db")
