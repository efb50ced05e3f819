"""The HTTP connector against a server on 127.0.0.1 that injects faults: server errors, timeouts,
truncated and malformed pages, in each pagination style."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from connector_helpers import make_source

from onetable.connectors.extract import extract_source
from onetable.connectors.http import read_http
from onetable.connectors.landing import Window
from onetable.connectors.reading import ConnectorError
from onetable.warehouse.store import open_store

RECORDS = [
    {"人员编号": f"G{i:03d}", "姓名": f"居民{i}", "网格": {"code": "G01"}} for i in range(23)
]
RECORDS[7] = "not a record"
WINDOW = Window(None, datetime(2026, 2, 1))


class FaultyApi:
    """A paged API; `faults[n]` lists what to do on the n-th request for page n (consumed)."""

    def __init__(self):
        self.faults: dict[int, list[str]] = defaultdict(list)
        self.requests: list[dict] = []
        self.auth: list[str | None] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
                api.requests.append(query)
                api.auth.append(self.headers.get("Authorization"))
                size = int(query.get("size", 10))
                if "unpaged" in urlparse(self.path).path:  # every record, whatever is asked
                    start, size = 0, len(RECORDS)
                elif "cursor" in urlparse(self.path).path:
                    start = int(query.get("cursor", 0))
                elif "offset" in query:
                    start = int(query["offset"])
                else:
                    start = (int(query.get("page", 1)) - 1) * size
                page = start // size + 1
                fault = api.faults[page].pop(0) if api.faults[page] else "ok"
                if fault == "slow":
                    time.sleep(1.0)
                if fault == "500":
                    self.send_response(503)
                    self.end_headers()
                    return
                if fault == "404":
                    self.send_response(404)
                    self.end_headers()
                    return
                items = RECORDS[start : start + size]
                nxt = str(start + size) if start + size < len(RECORDS) else None
                body = {"items": items, "next_cursor": nxt}
                if fault == "bad-total":
                    body["total"] = "many"
                if fault == "bad-link":
                    body["next"] = 2
                body = json.dumps(body, ensure_ascii=False).encode()
                if fault == "truncate":
                    body = body[: len(body) // 2]
                if fault == "no-items":
                    body = b'{"data": []}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def api():
    server = FaultyApi()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _source(api, pagination="page", path="/residents", **kw):
    location = {"kind": "http", "url": api.url + path, "pagination": pagination, "page_size": 10,
                "timeout_s": 0.3, "retries": 2} | kw  # fmt: skip
    return make_source("grid", location, required=["人员编号"])


def _read(api, source):
    chunks = list(read_http(source.location, source=source, window=WINDOW, backoff_s=0.01))
    rows = [r for c in chunks for r in c.rows.to_pylist()]
    return rows, [q for c in chunks for q in c.rejected]


@pytest.mark.parametrize(
    "pagination, path", [("page", "/residents"), ("offset", "/residents"), ("cursor", "/cursor")]
)
def test_every_pagination_reads_every_record(api, pagination, path):
    rows, rejected = _read(api, _source(api, pagination, path))
    assert len(rows) == 22 and [q.row_number for q in rejected] == [8]
    assert rows[0]["网格"] == '{"code": "G01"}'
    assert rows[-1]["_row"] == 23 and rows[-1]["_location"] == f"{api.url}{path} page 3"


def test_server_errors_timeouts_and_truncated_pages_are_retried(api):
    api.faults[1] = ["500", "slow"]
    api.faults[2] = ["truncate"]
    rows, _ = _read(api, _source(api))
    assert len(rows) == 22
    assert len(api.requests) == 4 + 3  # three pages, the empty fourth that ends paging, 3 retries


def test_a_page_that_stays_truncated_fails_the_source_clearly(api):
    api.faults[2] = ["truncate"] * 3
    with pytest.raises(ConnectorError) as info:
        _read(api, _source(api))
    assert str(info.value).startswith(
        f"source grid: {api.url}/residents page 2: the body is not valid JSON, perhaps truncated"
    )
    assert str(info.value).endswith("after 3 attempts")


def test_a_server_that_stays_down(api):
    api.faults[1] = ["500"] * 3
    with pytest.raises(ConnectorError, match="page 1: HTTP 503 after 3 attempts"):
        _read(api, _source(api))


def test_a_client_error_is_not_retried(api):
    api.faults[1] = ["404"]
    with pytest.raises(ConnectorError, match="HTTP 404; check the URL"):
        _read(api, _source(api))
    assert len(api.requests) == 1


def test_a_page_without_its_list(api):
    api.faults[1] = ["no-items"]
    with pytest.raises(ConnectorError, match="has no 'items' list"):
        _read(api, _source(api))


def test_an_api_that_ignores_the_page_parameter_fails_instead_of_looping(api):
    with pytest.raises(ConnectorError, match=r"page 2 repeats page 1: .* set `pagination: none`"):
        _read(api, _source(api, path="/unpaged"))
    rows, rejected = _read(api, _source(api, "none", "/unpaged"))
    assert len(rows) + len(rejected) == 23
    assert api.requests[-1] == {}  # one request, no paging parameters


@pytest.mark.parametrize(
    "fault, message",
    [("bad-total", "'total' is not a count of records"), ("bad-link", "'next' is not a link")],
)
def test_a_total_or_next_link_that_means_nothing_fails_the_source(api, fault, message):
    api.faults[1] = [fault]
    with pytest.raises(ConnectorError, match=f"source grid: {api.url}/residents page 1: {message}"):
        _read(api, _source(api))


def test_landing_an_api_with_a_token_and_window_params(api, store_settings):
    source = make_source(
        "grid",
        {"kind": "http", "url": api.url + "/residents", "page_size": 10, "conn_id": "grid_api",
         "since_param": "since", "until_param": "until"},
        read={"mode": "cursor", "cursor": "更新时间"}, required=["人员编号"],
    )  # fmt: skip
    env = {"AIRFLOW_CONN_GRID_API": "http://:tok3n@grid.example"}
    out = extract_source(
        store_settings, source, "grid.yaml", end=datetime(2026, 2, 1), run_id="r", environ=env
    )
    manifest = out.manifests[0]
    assert (manifest.read, manifest.landed, manifest.quarantined) == (23, 22, 1)
    assert api.requests[0] == {"size": "10", "page": "1", "until": "2026-02-01T00:00:00"}
    assert set(api.auth) == {"Bearer tok3n"}
    extract_source(
        store_settings, source, "grid.yaml", end=datetime(2026, 3, 1), run_id="r2", environ=env
    )
    assert api.requests[-1]["since"] == "2026-01-31T00:00:00"  # the window's start less the overlap
    with open_store(store_settings) as con:
        assert con.execute("SELECT count(*) FROM landing.grid").fetchone()[0] == 22


def test_an_api_with_nothing_new_lands_nothing_and_fails_no_column_check(api, store_settings):
    source = make_source(
        "grid", {"kind": "http", "url": api.url + "/residents", "page_size": 10},
        required=["人员编号"],
    )  # fmt: skip
    kept = RECORDS[:]
    RECORDS.clear()  # a window in which no record changed: one page, no items, no columns
    try:
        out = extract_source(
            store_settings, source, "grid.yaml", end=datetime(2026, 2, 1), run_id="r"
        )
    finally:
        RECORDS.extend(kept)
    assert (out.manifests[0].read, out.manifests[0].landed) == (0, 0)
