"""Runs at once: a run holds the store for its whole length (`run_lock`), so two runs never
interleave stage by stage, and a run that cannot get the store fails before it changes anything."""

from __future__ import annotations

import threading
import time

import pytest

from faults.sql_county import run
from onetable.pipeline import RunContext
from onetable.warehouse.ledger import current_snapshot, run_snapshots
from onetable.warehouse.store import StoreBusyError, open_store, run_lock

pytestmark = pytest.mark.slow  # four runs of the pipeline


def test_a_run_that_cannot_get_the_store_changes_nothing(county):
    environ, urls = county
    store = environ("busy")
    run(store, "2026-01", urls["2026-01"])
    ctx = RunContext.create("2026-02", "other", store)
    with open_store(ctx.store) as con:
        before = current_snapshot(con)
    with run_lock(ctx.store), pytest.raises(StoreBusyError, match="another run"):
        run({**store, "ONETABLE_LOCK_TIMEOUT": "0.5"}, "2026-02", urls["2026-02"])
    with open_store(ctx.store) as con:
        assert current_snapshot(con) == before


def test_two_runs_at_once_take_turns(county):
    environ, urls = county
    store = environ("twice")
    errors = []

    def one(period: str) -> None:
        try:  # a pause after each stage, as a slow terminal gives: room for the other run
            run(store, period, urls[period], progress=lambda *_: time.sleep(0.3))
        except Exception as exc:  # raised in the test's thread below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(p,)) for p in ("2026-01", "2026-02")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ctx = RunContext.create("2026-01", "read", store)
    with open_store(ctx.store) as con:
        order = [s["run_id"] for s in run_snapshots(con) if s["run_id"] != "init"]
    blocks = [r for i, r in enumerate(order) if i == 0 or order[i - 1] != r]
    assert len(blocks) == 2, blocks  # each run's commits in one block: no stage came between
