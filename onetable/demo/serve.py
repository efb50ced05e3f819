"""`onetable demo serve`: the grid system's paged JSON API, from the files the generator wrote.

    GET /residents?page=1&size=500&since=2026-01-31T00:00:00&until=2026-03-01T00:00:00
    GET /key_places?...

answers `{"items": [...], "total": n, "page": p, "size": s}`: each record's latest version
whose 更新时间 falls in [since, until) (either bound may be left out), ordered by 更新时间 and
key. A month's window therefore returns the records changed that month, as they stood at its
end; a record whose 状态 is 迁出/死亡 (or 注销 for a key place) has ended. Standard library only
(ThreadingHTTPServer), bound to 127.0.0.1 unless told otherwise. It prints its URL and nothing
else: no request log, since a query or an answer may hold personal data.
"""

from __future__ import annotations

import bisect
import json
import signal
import sys
import threading
from collections import OrderedDict
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
MAX_SIZE = 5000
ENDPOINTS = {  # path: (file under sources/grid/, key column)
    "/residents": ("residents.jsonl", "网格人员ID"),
    "/key_places": ("key_places.jsonl", "场所编号"),
}
UPDATED = "更新时间"
_TIME = "%Y-%m-%d %H:%M:%S"


class Versions:
    """One endpoint's record versions in time order, answering windows from a small cache."""

    def __init__(self, path: Path, key: str):
        self.key = key
        self.items: list[dict] = []
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    self.items.append(json.loads(line))
        self.items.sort(key=lambda r: (r[UPDATED], r[key]))
        self.times = [r[UPDATED] for r in self.items]
        self._cache: OrderedDict[tuple, list[dict]] = OrderedDict()
        self._lock = threading.Lock()

    def window(self, since: str | None, until: str | None) -> list[dict]:
        """Each record's latest version with since <= 更新时间 < until, by 更新时间 and key."""
        with self._lock:
            if (since, until) in self._cache:
                self._cache.move_to_end((since, until))
                return self._cache[(since, until)]
        lo = bisect.bisect_left(self.times, since) if since else 0
        hi = bisect.bisect_left(self.times, until) if until else len(self.items)
        latest: dict[str, dict] = {}
        for record in self.items[lo:hi]:
            latest[record[self.key]] = record  # time order: the last one wins
        result = sorted(latest.values(), key=lambda r: (r[UPDATED], r[self.key]))
        with self._lock:
            self._cache[(since, until)] = result
            while len(self._cache) > 16:
                self._cache.popitem(last=False)
        return result


def _bound(value: str | None) -> str | None:
    """An ISO date or datetime as the text 更新时间 is written in (comparable as text)."""
    if value is None or value == "":
        return None
    return datetime.fromisoformat(value).strftime(_TIME)


def make_server(out: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT):
    """A server for `out/sources/grid/` (port 0: any free port); the caller runs it."""
    grid = Path(out) / "sources" / "grid"
    data = {}
    for path, (file, key) in ENDPOINTS.items():
        if not (grid / file).is_file():
            raise FileNotFoundError(f"{grid / file} not found: run `onetable demo generate` first")
        data[path] = Versions(grid / file, key)

    class Handler(BaseHTTPRequestHandler):
        server_version = "onetable-demo-grid"

        def log_message(self, *args):  # no request log
            pass

        def _send(self, status: int, body: dict) -> None:
            raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self):
            url = urlparse(self.path)
            if url.path in ("", "/"):
                self._send(200, {"endpoints": sorted(ENDPOINTS)})
                return
            versions = data.get(url.path.rstrip("/"))
            if versions is None:
                self._send(404, {"error": f"no such endpoint; try {', '.join(sorted(ENDPOINTS))}"})
                return
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            try:
                page = int(query.get("page", 1))
                size = int(query.get("size", 500))
                since, until = _bound(query.get("since")), _bound(query.get("until"))
                if page < 1 or not 1 <= size <= MAX_SIZE:
                    raise ValueError
            except ValueError:
                self._send(400, {"error": f"page >= 1, 1 <= size <= {MAX_SIZE}, since/until ISO"})
                return
            items = versions.window(since, until)
            start = (page - 1) * size
            self._send(200, {"items": items[start : start + size], "total": len(items),
                             "page": page, "size": size})  # fmt: skip

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def serve(out: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> int:
    """Run until Ctrl-C or SIGTERM; print the URL only. Returns the exit code."""
    try:
        server = make_server(out, host, port)
    except KeyboardInterrupt:
        return 130
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port} ({exc.strerror})", file=sys.stderr)
        return 2

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    print(f"http://{host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        signal.signal(signal.SIGTERM, previous)
    return 0
