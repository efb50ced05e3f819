"""Periods that can be re-run in any order: a period's input is every committed window that ends by
its end, and a window a period needs is extracted when it runs, whatever later periods have run."""

from __future__ import annotations

import pytest

from faults.sql_county import MONTHS, database, published, run
from onetable.pipeline import RunContext
from onetable.warehouse.store import open_store

pytestmark = pytest.mark.slow  # eleven runs of the pipeline


def test_periods_run_backwards_publish_what_they_publish_in_order(county):
    environ, urls = county
    forward, backward = environ("forward"), environ("backward")
    for period in ("2026-01", "2026-02", "2026-03"):
        run(forward, period, urls[period])
    for period in ("2026-03", "2026-02", "2026-01"):
        run(backward, period, urls[period])
    expected = published(forward)
    active = {p: v for p, i, v in expected["one_table"] if i == "RK01"}
    assert active == {"2026-01": 4, "2026-02": 4, "2026-03": 4}  # P2 moves out, P1 dies
    assert published(backward) == expected


def test_a_source_down_for_a_month_is_read_when_that_month_is_rerun(county):
    environ, urls = county
    store = environ("outage")
    down = run(store, "2026-01", f"sqlite:///{urls['2026-01'][10:]}.missing/registry.db")
    assert down["extract"]["registry"]["error"]
    run(store, "2026-02", urls["2026-02"])
    assert run(store, "2026-01", urls["2026-01"])["extract"]["registry"]["landed"] == 4
    rk01 = {p: v for p, i, v in published(store)["one_table"] if i == "RK01"}
    assert rk01 == {"2026-01": 4, "2026-02": 4}


def test_a_rerun_replaces_the_quarantine_of_its_period(county, tmp_path):
    environ, _ = county
    store = environ("rerun")
    url = database(
        tmp_path / "bad" / "registry.db", [*MONTHS["2026-01"], ("P7", "正常", "2026-01-15")]
    )

    def quarantined() -> list:
        ctx = RunContext.create("2026-01", "read", store)
        with open_store(ctx.store) as con:
            return con.execute(
                "SELECT source, rule_id, field, location, window_end FROM quarantine.rows "
                "WHERE stage = 'check' ORDER BY ALL"
            ).fetchall()

    run(store, "2026-01", url)
    first = quarantined()
    assert {r[:3] for r in first} == {("registry", "person.id_number.checksum", "id_number")}
    run(store, "2026-01", url)
    assert quarantined() == first
