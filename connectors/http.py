"""Read a paged JSON API (page, offset or cursor pagination), retrying with backoff on server
errors, timeouts and truncated pages, and failing with a clear error when a page stays bad or the
pages do not add up to the API's own total."""

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
    params: dict[str, Any] = {}
    if location.pagination != "none":
        params[location.size_param] = location.page_size
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


def _get_page(client: httpx.Client, location: HttpLocation, url: str, params: dict | None,
              what: str, backoff_s: float) -> Any:  # fmt: skip
    """One page as parsed JSON, retried on 5xx, 429, timeouts, broken connections and bodies that
    are not JSON (a truncated page)."""
    problem = ""
    for attempt in range(location.retries + 1):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        try:
            response = client.get(url, params=params)
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


def _optional(body: Any, key: str | None) -> tuple[bool, Any]:
    """(whether the page has the dotted key, its value): a page may leave a total or link out."""
    if key is None:
        return False, None
    try:
        return True, dotted(body, key)
    except KeyError:
        return False, None


def _total(body: Any, location: HttpLocation, what: str) -> int | None:
    """The API's own count of the read's records, when the page gives one."""
    given, value = _optional(body, location.total)
    if not given or value is None:
        return None
    if isinstance(value, bool) or not str(value).isdigit():
        raise ConnectorError(f"{what}: {location.total!r} is not a count of records")
    return int(value)


def read_http(
    location: HttpLocation, *, source: Source, window: Window, token: str | None = None,
    base_url: str = "", backoff_s: float = 0.5, transport: httpx.BaseTransport | None = None,
) -> Iterator[Chunk]:  # fmt: skip
    """Stream the API's records page by page; `_location` names the page, `_row` counts records.

    Paging never stops at a short page (a server may cap its page size): it stops at an empty
    page, a null next link, or the API's total; a read that disagrees with that total raises, so
    the landing's transaction, and with it the watermark, is not committed. A `url` that is a
    path is read from `base_url` (the connection's host)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    page, offset, seen = 1, 0, 0
    url, params = location.url, _params(location, source, window, page, offset, None)
    total: int | None = None
    previous: list | None = None
    with httpx.Client(
        base_url=base_url, timeout=location.timeout_s, headers=headers, transport=transport
    ) as client:
        while True:
            label = f"{location.url} page {page}"
            what = f"source {source.source}: {label}"
            body = _get_page(client, location, url, params, what, backoff_s)
            try:
                items = dotted(body, location.items)
            except KeyError as exc:
                raise ConnectorError(
                    f"{what} has no {location.items!r} list (missing {exc})"
                ) from None
            if not isinstance(items, list):
                raise ConnectorError(f"{what}: {location.items!r} is not a list")
            if items and items == previous:  # the server ignores the paging parameter
                raise ConnectorError(
                    f"{what} repeats page {page - 1}: the API does not page by "
                    f"{location.pagination!r}; for an API that does not page, set `pagination: none`"
                )
            page_total = _total(body, location, what)
            if page_total is not None:
                if total is not None and page_total != total:
                    raise ConnectorError(
                        f"{what}: the API's total changed from {total} to {page_total} while "
                        "paging; the window is not committed"
                    )
                total = page_total
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
            previous = items
            following = _following(location, source, window, body, items, url, params,
                                   page=page, offset=offset, seen=seen, total=total, what=what)  # fmt: skip
            if following is None:
                break
            url, params = following
            page, offset = page + 1, offset + len(items)
    if total is not None and seen != total:
        raise ConnectorError(
            f"source {source.source}: {location.url}: the API counts {total} records but its "
            f"{page} page(s) gave {seen}; the window is not committed"
        )


def _following(
    location: HttpLocation, source: Source, window: Window, body: Any, items: list, url: str,
    params: dict | None, *, page: int, offset: int, seen: int, total: int | None, what: str,
) -> tuple[str, dict | None] | None:  # fmt: skip
    """The next request (URL and parameters), or None when this page was the last."""
    if location.pagination == "none":
        return None
    if location.pagination == "cursor":
        _, cursor = _optional(body, location.next_cursor)
        if not cursor:
            return None
        return url, _params(location, source, window, page + 1, offset, cursor)
    if not items:
        return None
    given, link = _optional(body, location.next_link)
    if given:  # the API says where the next page is, or that there is none
        if not link:
            return None
        if not isinstance(link, str):
            raise ConnectorError(f"{what}: {location.next_link!r} is not a link")
        return str(httpx.URL(url, params=params).join(link)), None
    if total is not None and seen >= total:
        return None
    return url, _params(location, source, window, page + 1, offset + len(items), None)
