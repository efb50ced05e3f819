"""Read a paged JSON API (page, offset or cursor pagination), retrying with backoff on server
errors, timeouts and truncated pages, and failing with a clear error when a page stays bad."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx

from onetable.connectors.landing import Window
from onetable.connectors.reading import Chunk, ConnectorError, dotted, records_table
from onetable.schemas.contracts import HttpLocation, Source
from onetable.warehouse.ledger import QuarantineRecord


def _params(location: HttpLocation, source: Source, window: Window, page: int, offset: int,
            cursor: str | None) -> dict[str, Any]:  # fmt: skip
    params: dict[str, Any] = {location.size_param: location.page_size}
    if location.pagination == "page":
        params[location.page_param] = page
    elif location.pagination == "offset":
        params[location.offset_param] = offset
    elif cursor:
        params[location.cursor_param] = cursor
    if source.read.mode == "cursor":
        if location.since_param and window.start is not None:
            params[location.since_param] = (window.start - source.read.overlap).isoformat()
        if location.until_param:
            params[location.until_param] = window.end.isoformat()
    return params


def _get_page(client: httpx.Client, location: HttpLocation, params: dict, what: str,
              backoff_s: float) -> Any:  # fmt: skip
    """One page as parsed JSON, retried on 5xx, 429, timeouts, broken connections and bodies that
    are not JSON (a truncated page)."""
    problem = ""
    for attempt in range(location.retries + 1):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        try:
            response = client.get(location.url, params=params)
        except httpx.TimeoutException:
            problem = f"timed out after {location.timeout_s:g} s"
            continue
        except httpx.TransportError as exc:
            problem = f"connection failed ({type(exc).__name__})"
            continue
        if response.status_code >= 500 or response.status_code == 429:
            problem = f"HTTP {response.status_code}"
            continue
        if response.status_code >= 400:
            raise ConnectorError(
                f"{what}: HTTP {response.status_code}; check the URL and the credentials"
            )
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            problem = f"the body is not valid JSON, perhaps truncated ({getattr(exc, 'msg', exc)} at {getattr(exc, 'pos', '?')} of {len(response.content)} bytes)"
    raise ConnectorError(f"{what}: {problem} after {location.retries + 1} attempts")


def read_http(
    location: HttpLocation, *, source: Source, window: Window, token: str | None = None,
    backoff_s: float = 0.5, transport: httpx.BaseTransport | None = None,
) -> Iterator[Chunk]:  # fmt: skip
    """Stream the API's records page by page; `_location` names the page, `_row` counts records."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    page, offset, cursor, seen = 1, 0, None, 0
    with httpx.Client(timeout=location.timeout_s, headers=headers, transport=transport) as client:
        while True:
            params = _params(location, source, window, page, offset, cursor)
            label = f"{location.url} page {page}"
            body = _get_page(
                client, location, params, f"source {source.source}: {label}", backoff_s
            )
            try:
                items = dotted(body, location.items)
            except KeyError as exc:
                raise ConnectorError(
                    f"source {source.source}: {label} has no {location.items!r} list (missing {exc})"
                ) from None
            if not isinstance(items, list):
                raise ConnectorError(
                    f"source {source.source}: {label}: {location.items!r} is not a list"
                )
            good, rejected = [], []
            for i, item in enumerate(items, start=seen + 1):
                if isinstance(item, dict):
                    good.append((i, item))
                else:
                    rejected.append(QuarantineRecord(
                        source=source.source, rule_id="C003", location=label, row_number=i,
                        raw=json.dumps(item, ensure_ascii=False), reason="a record that is not a JSON object",
                    ))  # fmt: skip
            yield Chunk(records_table(good, label), rejected)
            seen += len(items)
            if location.pagination == "cursor":
                try:
                    cursor = dotted(body, location.next_cursor)
                except KeyError:
                    cursor = None
                if not cursor:
                    return
            elif len(items) < location.page_size:
                return
            page, offset = page + 1, offset + len(items)
