"""Heartbeats for trials driven with ask/tell (Optuna beats only inside ``study.optimize``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import optuna

log = logging.getLogger(__name__)


def heartbeat_interval_of(storage: optuna.storages.BaseStorage) -> int | None:
    getter = getattr(storage, "get_heartbeat_interval", None)
    return getter() if getter else None


@contextmanager
def heartbeat(storage: optuna.storages.BaseStorage, trial_id: int) -> Iterator[None]:
    """Beat for ``trial_id`` while the block runs (Optuna does this only inside ``study.optimize``;
    the search drives trials with ask/tell and adopts trials of dead workers, so it beats itself)."""
    interval = heartbeat_interval_of(storage)
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        failing = False
        while True:
            try:
                storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]
                failing = False
            except Exception as error:  # noqa: BLE001 - a database hiccup must not end a trial's beats
                if not failing:
                    log.warning("heartbeat of trial id %d failed (%s: %s); retrying every %s s", trial_id,
                                type(error).__name__, error, interval)
                failing = True
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
