"""End to end over a generated demo county: department systems to published snapshot, two months,
a rerun, the DAG, and no personal data outside the store and the allowed places."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from onetable.demo.run import (
    databases_as_of,
    demo_environ,
    linkage_against_truth,
)
from onetable.demo.truth import load_truth
from onetable.pipeline import RunContext, new_run_id, run_period
from onetable.quality.pii_scan import scan_personal_data
from onetable.warehouse.periods import Period
from onetable.warehouse.store import open_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(demo_county):
    return demo_county(1)


def _query(out: Path, sql: str, *params):
    environ = demo_environ(out, "http://127.0.0.1:1")
    ctx = RunContext.create("2026-01", "query", environ)
    with open_store(ctx.store) as con:
        return con.execute(sql, list(params)).fetchall()


def test_every_row_is_accounted_for(demo):
    out, results = demo
    assert set(results) == {"2026-01", "2026-02"}
    for period in results.values():
        for name, r in period["extract"].items():
            assert r["error"] is None, name
            assert r["read"] == r["landed"] + r["quarantined"] + r["unchanged"], name
    bad = _query(
        out,
        "SELECT count(*) FROM meta.accounting WHERE rows_read <> rows_kept + rows_quarantined + rows_unchanged",
    )
    assert bad == [(0,)]
    assert results["2026-01"]["extract"]["household_registry"]["landed"] > 1000


def test_the_persons_found_are_the_true_ones(demo):
    out, _ = demo
    registry = pd.DataFrame(
        _query(out, "SELECT source, record_key, person_id FROM core.person_registry"),
        columns=["source", "record_key", "person_id"],
    )
    got = linkage_against_truth(out, registry)
    assert got["precision"] >= 0.995 and got["recall"] >= 0.995, got
    assert abs(got["persons"] - got["true_persons"]) / got["true_persons"] <= 0.01, got


def test_a_rerun_changes_no_id_and_no_table(demo):
    out, results = demo
    ids = dict(_query(out, "SELECT source || record_key, person_id FROM core.person_registry"))
    table = _query(
        out, "SELECT * EXCLUDE (run_id) FROM marts.one_table WHERE period = '2026-01' ORDER BY ALL"
    )
    persons = _query(
        out, "SELECT * FROM marts.person_period WHERE period = '2026-01' ORDER BY person_id"
    )
    counts = len(ids), len(persons), len(table)  # counts only: a failure prints no personal data
    assert min(counts) > 0 and counts[1] > 1000  # empty before and after would prove nothing
    period = Period.parse("2026-01")
    environ = {**demo_environ(out, "http://127.0.0.1:1"), **databases_as_of(out, "2026-01-31")}
    rerun = run_period(RunContext.create("2026-01", new_run_id(period), environ))
    assert rerun["link"]["new_ids"] == 0
    # committed windows: not again; every source answers, and none opens a window, even an empty one
    assert set(rerun["extract"]) == set(results["2026-01"]["extract"])
    assert all(r["windows"] == 0 and r["landed"] == 0 for r in rerun["extract"].values())
    assert (
        dict(_query(out, "SELECT source || record_key, person_id FROM core.person_registry")) == ids
    )
    assert (
        _query(
            out,
            "SELECT * EXCLUDE (run_id) FROM marts.one_table WHERE period = '2026-01' ORDER BY ALL",
        )
        == table
    )
    assert (
        _query(out, "SELECT * FROM marts.person_period WHERE period = '2026-01' ORDER BY person_id")
        == persons
    )


def test_indicators_follow_the_truth(demo):
    out, _ = demo
    truth = load_truth(out / "truth")
    from onetable.demo.truth import status_on

    (disabled,) = _query(
        out,
        "SELECT sum(value) FROM marts.one_table WHERE period = '2026-02' AND indicator = 'CJ01'",
    )[0]
    real = len(status_on(truth, "残疾", date(2026, 2, 28)))
    assert disabled > 0 and abs(disabled - real) <= max(2, 0.05 * real)


def test_no_personal_data_outside_the_store_and_the_allowed_places(demo):
    out, _ = demo
    truth = load_truth(out / "truth")
    people = truth.persons.sample(300, random_state=1)
    needles = {v: "id_number" for v in people["id_number"]} | {
        v: "phone" for v in people["phone"].dropna()
    }
    allowed = [out / "sources", out / "truth", out / "out" / "share"]
    found = scan_personal_data([out], needles, allowed=allowed)
    assert found == [], found[:5]
    extracts = list((out / "out" / "share").rglob("manifest.json"))
    assert extracts, "the sharing entry wrote its extract"
    in_extracts = scan_personal_data(
        [out / "out" / "share"], {v: k for v, k in needles.items() if k == "id_number"}
    )
    assert in_extracts == []  # ID numbers are pseudonymised in the shipped entry


@pytest.mark.airflow
def test_the_dag_yields_the_cli_core(demo, airflow_db, monkeypatch, tmp_path):
    import threading

    from airflow.models import DagBag
    from airflow.sdk import DagRunState

    from onetable.demo.serve import make_server

    out, _ = demo
    server = make_server(out, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        environ = {**demo_environ(out, f"http://127.0.0.1:{server.server_address[1]}"),
                   **databases_as_of(out, "2026-01-31"), "ONETABLE_STATE_DIR": str(tmp_path / "dag-state")}  # fmt: skip
        for name, value in environ.items():
            if name.startswith(("ONETABLE_", "AIRFLOW_CONN_")):
                monkeypatch.setenv(name, value)
        dag = DagBag(dag_folder=str(Path(__file__).parents[1] / "dags")).dags["onetable_monthly"]
        run = dag.test(run_conf={"period": "2026-01"})
    finally:
        server.shutdown()
        server.server_close()
    assert run.state == DagRunState.SUCCESS
    ctx = RunContext.create("2026-01", "q", environ)
    with open_store(ctx.store) as con:
        dag_core = con.execute(
            "SELECT * FROM marts.person_period WHERE period = '2026-01' ORDER BY person_id"
        ).fetchall()
    persons = len(dag_core)  # a count: a failure must not print the rows
    assert persons > 1000  # two empty tables would be equal too
    assert dag_core == _query(
        out, "SELECT * FROM marts.person_period WHERE period = '2026-01' ORDER BY person_id"
    )
    people = load_truth(out / "truth").persons.sample(300, random_state=2)
    needles = {v: "id_number" for v in people["id_number"]} | {
        v: "phone" for v in people["phone"].dropna()
    }
    airflow_home = Path(os.environ["AIRFLOW_HOME"])  # its metadata DB (XCom) and task logs
    assert scan_personal_data([airflow_home, tmp_path / "dag-state"], needles) == []
