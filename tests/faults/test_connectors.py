"""Issue 14, "No silent loss": the connector faults that once lost rows with exit status 0, each
reproduced as it was found on the demo county, with the outcome the fix promises."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import pytest
import sqlalchemy as sa
from connector_helpers import make_source, write_csv

from onetable.connectors.extract import extract_all, extract_source
from onetable.connectors.reading import ConnectorError
from onetable.warehouse.ledger import watermark
from onetable.warehouse.masking import scrub
from onetable.warehouse.store import open_store

FEB = datetime(2026, 2, 1)

# --- 1. HTTP paging: a server that caps its page size ------------------------------------------

RESIDENTS = 2755
CAP = 100


class CappingApi:
    """The grid system's API behind a gateway that caps the page size: at most 100 residents a
    page whatever `size` asks. `mode` is what the API tells about the rest: `total` (its count of
    records), `bare` (nothing), `link` (a next link), or `gaps` (a total, but pages numbered by
    the size asked, so the capped pages skip records: pages that disagree with the total)."""

    def __init__(self, mode: str):
        self.requests: list[dict[str, str]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
                api.requests.append(query)
                asked, page = int(query["size"]), int(query["page"])
                size = min(asked, CAP)
                start = (page - 1) * (asked if mode == "gaps" else size)
                items = [
                    {"人员编号": f"W{i:05d}", "姓名": f"居民{i}"}
                    for i in range(start, min(start + size, RESIDENTS))
                ]
                body: dict = {"items": items}
                if mode in ("total", "gaps"):
                    body["total"] = RESIDENTS
                if mode == "link":
                    more = start + size < RESIDENTS
                    body["next"] = f"/residents?size={asked}&page={page + 1}" if more else None
                raw = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/residents"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@contextlib.contextmanager
def capping_api(mode: str) -> Iterator[CappingApi]:
    api = CappingApi(mode)
    try:
        yield api
    finally:
        api.server.shutdown()
        api.server.server_close()


def _grid(api: CappingApi):
    location = {"kind": "http", "url": api.url, "page_size": 500, "retries": 0}
    return make_source("grid", location, required=["人员编号"])


@pytest.mark.parametrize("mode", ["total", "bare", "link"])
def test_a_server_that_caps_its_page_size_lands_every_resident(store_settings, mode):
    """A page shorter than the page size no longer ends paging: every resident lands, whether
    the API gives its total, nothing (paging ends at the empty page) or next links."""
    with capping_api(mode) as api:
        out = extract_source(store_settings, _grid(api), "grid.yaml", end=FEB, run_id="r")
        assert {q["size"] for q in api.requests} == {"500"}  # asked 500, got 100 a page
        assert len(api.requests) == (29 if mode == "bare" else 28)  # "bare": the empty 29th
    manifest = out.manifests[0]
    assert (manifest.read, manifest.landed, manifest.quarantined) == (RESIDENTS, RESIDENTS, 0)
    with open_store(store_settings) as con:
        assert con.execute("SELECT count(DISTINCT 人员编号) FROM landing.grid").fetchone()[0] == (
            RESIDENTS
        )
        assert watermark(con, "grid") == FEB


def test_pages_that_disagree_with_the_api_total_commit_nothing(store_settings):
    """The API counts 2,755 records but its capped pages, numbered by the size asked, give 600:
    the source fails naming itself, the total and the count; no row lands, no watermark moves."""
    with capping_api("gaps") as api, pytest.raises(ConnectorError) as info:
        extract_source(store_settings, _grid(api), "grid.yaml", end=FEB, run_id="r")
    message = str(info.value)
    assert message.startswith("source grid: ")
    assert "the API counts 2755 records but its 7 page(s) gave 600" in message
    assert message.endswith("the window is not committed")
    with open_store(store_settings) as con:
        assert watermark(con, "grid") is None
        tables = "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'landing'"
        assert con.execute(tables).fetchone()[0] == 0  # the landing's transaction rolled back


# --- 2. CSV: a field of 1 MB ------------------------------------------------------------------


def test_a_1_mb_field_quarantines_its_row_and_the_rest_of_the_file_lands(store_settings, tmp_path):
    """A GB18030 file with one field of 1 MB among normal rows no longer fails as a whole: that row
    is quarantined (C005) at its physical line with its raw text, the reason naming the field and
    its size but not the value, and every other row lands at its own line."""
    rows = [f"JZ{i:04d},居民{i},低保" for i in range(3000)]
    pasted = "备注" * 250_000  # 1,000,000 bytes in GB18030, 1,500,000 as UTF-8
    rows[1500] = f"JZ1500,居民1500,{pasted}"
    path = write_csv(tmp_path / "data" / "civil" / "民政对象名册_20260131.csv",
                     "民政对象名册（2026年1月）\n救助编号,姓名,救助类别", rows)  # fmt: skip
    assert path.stat().st_size > 1_000_000
    source = make_source(
        "civil", {"kind": "file", "path": "civil/*.csv", "format": "csv"},
        record_key={"column": "救助编号"}, required=["救助编号", "姓名"],
    )  # fmt: skip
    out = extract_source(store_settings, source, "civil.yaml", end=FEB, run_id="r",
                         data_root=tmp_path / "data")  # fmt: skip
    (manifest,) = out.manifests
    assert (manifest.read, manifest.landed, manifest.quarantined) == (3000, 2999, 1)
    with open_store(store_settings) as con:
        (quarantined,) = con.execute(
            "SELECT rule_id, field, row_number, location, reason, raw FROM quarantine.rows"
        ).fetchall()
        landed = dict(con.execute("SELECT 救助编号, _row FROM landing.civil").fetchall())
    rule, field, line, location, reason, raw = quarantined
    assert (rule, field, line, location) == ("C005", "救助类别", 1503, str(path))  # title, header
    assert reason.startswith("field 救助类别 holds 500,000 characters (1,500,000 bytes as UTF-8)")
    assert "备" not in reason
    assert raw == rows[1500]  # nothing of the row is lost: its raw text is in the quarantine
    assert len(landed) == 2999 and "JZ1500" not in landed
    assert (landed["JZ1499"], landed["JZ1501"], landed["JZ2999"]) == (1502, 1504, 3002)


# --- 3. SQLite: a path that does not exist ------------------------------------------------------


def _health(conn_id: str, table: str = "居民健康档案", **location):
    return make_source(
        conn_id, {"kind": "sql", "conn_id": conn_id, "table": table, "retries": 0} | location,
        record_key={"column": "健康档案编号"}, required=["健康档案编号", "姓名"],
    )  # fmt: skip


def test_a_missing_sqlite_file_is_named_and_not_created(store_settings, tmp_path):
    """A SQLite path that does not exist no longer creates an empty database in the department's
    folder: the source fails saying the file is missing, with its path whole; an existing
    database beside it is read, and left as it was."""
    folder = tmp_path / "卫健委"
    folder.mkdir()
    missing = folder / "居民健康档案.db"
    present = folder / "健康档案_备份.db"
    with sa.create_engine(f"sqlite:///{present}").begin() as con:
        con.execute(sa.text("CREATE TABLE 居民健康档案 (健康档案编号 TEXT, 姓名 TEXT)"))
        con.execute(sa.text("INSERT INTO 居民健康档案 VALUES ('H1', '张三'), ('H2', '李四')"))
    before = present.read_bytes()
    contracts = SimpleNamespace(  # what extract_all reads
        source_file=lambda name: tmp_path / f"{name}.yaml",
        sources={"health": _health("health"), "backup": _health("backup")},
    )
    env = {
        "AIRFLOW_CONN_HEALTH": f"sqlite:///{missing}",
        "AIRFLOW_CONN_BACKUP": f"sqlite:///{present}",
    }
    health, backup = extract_all(store_settings, contracts, end=FEB, run_id="r", environ=env)
    assert health.error == (
        f"source health: the SQLite database file {missing} of connection 'health' does not exist"
    )
    assert sorted(p.name for p in folder.iterdir()) == [present.name]  # nothing created
    assert backup.error is None and backup.manifests[0].landed == 2
    assert present.read_bytes() == before


@pytest.mark.parametrize(
    "server, flag, on",
    [("postgres", "current_setting('transaction_read_only')", "on"),
     ("mariadb", "@@tx_read_only", "1")],
)  # fmt: skip
def test_postgresql_and_mariadb_are_read_in_a_read_only_transaction(store_settings, request,
                                                                     server, flag, on):  # fmt: skip
    url = request.getfixturevalue(f"{server}_url")
    query = f"SELECT 'H1' AS 健康档案编号, 'x' AS 姓名, {flag} AS 只读"
    source = _health("health", table=None, query=query)
    out = extract_source(store_settings, source, "health.yaml", end=FEB, run_id="r",
                         environ={"AIRFLOW_CONN_HEALTH": url})  # fmt: skip
    assert out.manifests[0].landed == 1
    with open_store(store_settings) as con:
        assert con.execute("SELECT 只读 FROM landing.health").fetchone()[0] == on


def test_the_scrubber_keeps_a_path_whole_and_masks_the_rest():
    message = "unable to open '/data/卫健委/居民健康档案.db' for 张三, 320324198001011234"
    assert scrub(message) == (
        "unable to open '/data/卫健委/居民健康档案.db' for 张*, 320***********1234"
    )
