"""Optuna's private API the search uses (``search/optuna_adapter.py``) is still where the adapter reaches
for it: this fails on an Optuna upgrade that moves any of it, before a search fails in the middle of a run."""

from __future__ import annotations

import inspect

import optuna
from optuna.trial import TrialState

from orchestrator.search import optuna_adapter
from orchestrator.search.vocabulary import (
    FAILED_TRIAL_SYSTEM_ATTR,
    FIXED_PARAMS_SYSTEM_ATTR,
    RETRY_HISTORY_SYSTEM_ATTR,
)


def test_base_heartbeat_still_declares_what_the_journal_storage_implements() -> None:
    assert optuna_adapter.BaseHeartbeat.__abstractmethods__ == {
        "record_heartbeat", "_get_stale_trial_ids", "get_heartbeat_interval", "get_heartbeat_stale_trial_callback"}
    assert "_get_stale_trial_ids" in inspect.getsource(optuna.storages.fail_stale_trials)
    assert isinstance(optuna.storages.RDBStorage("sqlite:///:memory:", heartbeat_interval=60),
                      optuna_adapter.BaseHeartbeat)


def test_trial_ids_storage_and_start_up_count_are_where_the_adapter_reads_them() -> None:
    optuna_adapter.quiet_optuna_notices()
    study = optuna.create_study()
    trial = study.ask()
    frozen = study.trials[0]
    assert optuna_adapter.trial_id_of(frozen) == trial._trial_id
    assert optuna_adapter.storage_of(study) is study._storage
    optuna_adapter.set_trial_user_attr(study, frozen, "k", 1)
    assert study.trials[0].user_attrs == {"k": 1}
    assert optuna_adapter.startup_trials_of(optuna.samplers.TPESampler(n_startup_trials=7)) == 7


def test_optuna_still_records_the_system_attributes_the_search_reads() -> None:
    optuna_adapter.quiet_optuna_notices()
    storage = optuna.storages.RDBStorage("sqlite:///:memory:", heartbeat_interval=60, grace_period=1)
    study = optuna.create_study(storage=storage)
    study.enqueue_trial({"x": 1.0})
    queued = study.ask({"x": optuna.distributions.FloatDistribution(0, 2)})
    assert study.trials[0].system_attrs[FIXED_PARAMS_SYSTEM_ATTR] == {"x": 1.0}
    optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)(study, study.trials[queued.number])
    retry = next(t for t in study.get_trials(deepcopy=False) if t.state == TrialState.WAITING)
    assert retry.system_attrs[FAILED_TRIAL_SYSTEM_ATTR] == queued.number
    assert retry.system_attrs[RETRY_HISTORY_SYSTEM_ATTR] == [queued.number]


def test_stale_trial_ids_finds_a_running_trial_whose_heartbeat_lapsed(tmp_path) -> None:
    import time

    from orchestrator.search.optuna_adapter import heartbeat, stale_trial_ids, trial_id_of
    from orchestrator.search.storage import make_storage, sqlite_url

    storage = make_storage(sqlite_url(tmp_path / "s.db"), heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(study_name="s", storage=storage)
    study.ask()
    trial_id = trial_id_of(study.trials[0])
    with heartbeat(storage, trial_id):
        pass
    time.sleep(2.5)
    assert stale_trial_ids(study) == [trial_id]
    assert stale_trial_ids(optuna.create_study()) == []  # an in-memory study has no heartbeats
