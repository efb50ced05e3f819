"""Issue 14, "No silent loss": the connector faults that once lost rows with exit status 0, each
reproduced as it was found on the demo county, with the outcome the fix promises."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from connector_helpers import make_source

from onetable.connectors.extract import extract_source
from onetable.connectors.reading import ConnectorError
from onetable.warehouse.ledger import watermark
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
