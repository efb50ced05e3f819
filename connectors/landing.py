"""Landing: raw rows as read, by (source, window), with lineage, written through the store and never
changed after commit (DESIGN.md, "Runs, windows and ids").

Each row carries its source, window and version, where it was read (file or table, sheet, physical
row), when, its record key and a row hash. Rows already landed as they are (a cursor window's
overlap, an unchanged row of a snapshot) are counted as unchanged, not landed twice; a snapshot's
records that vanished are landed as tombstones. The window, the quarantine and the counts are
committed in the caller's transaction with the rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from queue import Empty, Queue

import duckdb
import pyarrow as pa

from onetable.connectors.reading import LOCATION, ROW, SHEET, Chunk, ConnectorError
from onetable.schemas.contracts import Source
from onetable.warehouse.ledger import QuarantineRecord, Transaction

FLUSH_ROWS = 50_000  # rows per insert, one Parquet file each: larger inserts raise the peak
_LINEAGE = {
    "_source": "VARCHAR", "_window_start": "TIMESTAMP", "_window_end": "TIMESTAMP",
    "_version": "INTEGER", LOCATION: "VARCHAR", SHEET: "VARCHAR", ROW: "BIGINT",
    "_extracted_at": "TIMESTAMP", "_record_key": "VARCHAR", "_row_hash": "VARCHAR",
    "_op": "VARCHAR", "_deleted": "BOOLEAN",
}  # fmt: skip


@dataclass(frozen=True)
class Window:
    """An extraction window [start, end); start is None for a source's first window."""

    start: datetime | None
    end: datetime


@dataclass
class Manifest:
    """What one window's landing did, for the run summary and the logs (counts only)."""

    source: str
    window: Window
    version: int = 0
    read: int = 0
    landed: int = 0
    quarantined: int = 0
    unchanged: int = 0
    tombstones: int = 0
    new_columns: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)


def table_name(source: Source) -> str:
    return f'landing."{source.source}"'


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def landed_columns(con: duckdb.DuckDBPyConnection, source: Source) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'landing' AND table_name = ? ORDER BY column_index",
        [source.source],
    ).fetchall()
    return [r[0] for r in rows]


def latest_rows_sql(source: Source, *, before: datetime | None = None) -> str:
    """Each window's latest version of the source's landed rows; only windows ending by `before`."""
    where = (
        "" if before is None else f"WHERE _window_end <= TIMESTAMP '{before.isoformat(sep=' ')}'"
    )
    return (
        f"SELECT * FROM {table_name(source)} {where} "
        "QUALIFY _version = max(_version) OVER (PARTITION BY _window_start, _window_end)"
    )


def _prepare(con: duckdb.DuckDBPyConnection, source: Source, window: Window) -> None:
    """The rows already landed that this window's rows may repeat, as (key, hash) in __prior."""
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {table_name(source)} "
        f"({', '.join(f'{n} {t}' for n, t in _LINEAGE.items())})"
    )
    earlier = (
        f"SELECT * FROM ({latest_rows_sql(source)}) "
        f"WHERE _window_end < TIMESTAMP '{window.end.isoformat(sep=' ')}'"
    )
    if source.read.mode == "snapshot":  # the source's state before this window
        prior = (
            f"SELECT _record_key, _row_hash, _op FROM ({earlier}) QUALIFY row_number() OVER "
            "(PARTITION BY _record_key ORDER BY _window_end DESC, _row DESC NULLS FIRST) = 1"
        )
        prior = f"SELECT _record_key, _row_hash FROM ({prior}) WHERE _op <> 'delete'"
    elif window.start is None:
        prior = "SELECT NULL::VARCHAR AS _record_key, NULL::VARCHAR AS _row_hash WHERE false"
    else:  # the windows a cursor window's overlap reaches back into
        reach = (window.start - source.read.overlap).isoformat(sep=" ")
        prior = f"SELECT _record_key, _row_hash FROM ({earlier}) WHERE _window_end > TIMESTAMP '{reach}'"
    con.execute(f"CREATE OR REPLACE TEMP TABLE __prior AS {prior}")
    con.execute("CREATE OR REPLACE TEMP TABLE __seen (_record_key VARCHAR)")


def _key_sql(source: Source) -> str:
    key = source.record_key
    if key.column:
        return f"nullif(trim({_q(key.column)}), '')"
    parts = ", ".join(f"coalesce(trim({_q(c)}), '')" for c in key.hash_of or [])
    return f"CASE WHEN concat({parts}) = '' THEN NULL ELSE md5(concat_ws(chr(31), {parts})) END"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _hash_sql(columns: list[str]) -> str:
    """md5 over the row's non-empty values, each tagged by its column's name, in name order: a
    column added empty, or moved by the department, changes no row's hash. The tag is a short
    digest of the name, which hashes faster than the name itself."""
    tagged = ", ".join(
        f"{_lit(hashlib.md5(c.encode('utf-8')).hexdigest()[:8])} || nullif({_q(c)}, '')"
        for c in sorted(columns)
    )
    return f"md5(concat_ws(chr(31), {tagged}))" if columns else "md5('')"


def land_window(
    con: duckdb.DuckDBPyConnection, tx: Transaction, source: Source, window: Window,
    chunks: Iterable[Chunk], mapping_file: Path,
) -> Manifest:  # fmt: skip
    """Land one window of a source inside the caller's transaction; returns its manifest."""
    manifest = Manifest(source=source.source, window=window)
    manifest.version = tx.commit_window(source.source, window.start, window.end)
    _prepare(con, source, window)
    mapped = set(source.columns) | set(source.record_key.source_columns())
    if source.read.cursor:
        mapped.add(source.read.cursor)
    if source.deleted:
        mapped.add(source.deleted.column)
    known = set(landed_columns(con, source))
    extracted_at = datetime.now(UTC).replace(tzinfo=None)
    rejected: list[QuarantineRecord] = []
    buffer: list[pa.Table] = []
    checked = False

    has_prior = con.execute("SELECT count(*) > 0 FROM __prior").fetchone()[0]

    def flush() -> None:
        if buffer:
            table = pa.concat_tables(buffer, promote_options="default")
            buffer.clear()
            _insert(con, source, window, manifest, table, extracted_at, rejected, has_prior)

    for chunk in prefetch(chunks):
        manifest.read += chunk.read
        rejected.extend(chunk.rejected)
        table = chunk.rows
        columns = [c for c in table.column_names if c not in (LOCATION, SHEET, ROW)]
        if not checked and (table.num_rows or columns):  # an empty API page names no columns
            missing = [c for c in source.required if c not in columns]
            if missing:
                raise ConnectorError(
                    f"source {source.source}: required column(s) {', '.join(missing)} missing from "
                    f"{table.column(LOCATION)[0].as_py() if table.num_rows else 'the data'}; "
                    f"see the mapping {mapping_file}"
                )
            manifest.missing_columns = sorted(c for c in source.columns if c not in columns)
            checked = True
        for name in columns:
            if name not in known:
                con.execute(f"ALTER TABLE {table_name(source)} ADD COLUMN {_q(name)} VARCHAR")
                known.add(name)
                if name not in mapped:
                    manifest.new_columns.append(name)
        if table.num_rows:
            location = table.column(LOCATION)[0].as_py()
            if location not in manifest.locations:
                manifest.locations.append(location)
            buffer.append(table)
        if sum(t.num_rows for t in buffer) >= FLUSH_ROWS:
            flush()
    flush()
    if source.read.mode == "snapshot":
        manifest.tombstones = _tombstones(con, source, window, manifest.version, extracted_at)
    manifest.quarantined = tx.quarantine([_in_window(r, window) for r in rejected])
    tx.account(source.source, read=manifest.read, kept=manifest.landed,
               quarantined=manifest.quarantined, unchanged=manifest.unchanged,
               window_start=window.start, window_end=window.end)  # fmt: skip
    return manifest


def prefetch(chunks: Iterable[Chunk], depth: int = 2) -> Iterator[Chunk]:
    """Read the next chunks in a thread while the store writes this one: parsing holds one core,
    DuckDB's writing the other. The reader's error is raised here, in the caller's transaction."""
    queue: Queue = Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                queue.put(chunk)
            queue.put(done)
        except BaseException as exc:  # handed to the consumer, raised in its thread
            queue.put(exc)

    thread = threading.Thread(target=produce, name="onetable-read", daemon=True)
    thread.start()
    try:
        while (item := queue.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(Empty):
                queue.get(timeout=0.05)


def _in_window(record: QuarantineRecord, window: Window) -> QuarantineRecord:
    return replace(record, window_start=window.start, window_end=window.end)


def _insert(
    con: duckdb.DuckDBPyConnection, source: Source, window: Window, manifest: Manifest,
    table: pa.Table, extracted_at: datetime, rejected: list[QuarantineRecord], has_prior: bool,
) -> None:  # fmt: skip
    """One INSERT straight from the Arrow chunk: key and hash are computed once, in DuckDB."""
    columns = [c for c in table.column_names if c not in (LOCATION, SHEET, ROW)]
    key_sql = _key_sql(source)
    deleted = "false"
    if source.deleted and source.deleted.column in columns:
        values = ", ".join(_lit(v) for v in source.deleted.values)
        deleted = f"coalesce(trim({_q(source.deleted.column)}) IN ({values}), false)"
    # DuckDB finds the chunk by this variable's name (a replacement scan). A registered view would
    # keep every chunk alive until the transaction commits: memory grew with the file's size.
    _landing_chunk = table
    key = source.record_key
    empty = con.execute(
        f"SELECT {LOCATION}, {SHEET}, {ROW}, concat_ws(chr(9), {', '.join(_q(c) for c in columns)}) "
        f"FROM _landing_chunk WHERE {key_sql} IS NULL ORDER BY {ROW}"
    ).fetchall()
    rejected.extend(
        QuarantineRecord(
            source=source.source,
            rule_id="C004",
            location=location,
            sheet=sheet,
            row_number=row,
            field=key.column or ",".join(key.hash_of or []),
            raw=raw,
            reason="the record key is empty, so the row cannot be tracked across windows",
        )
        for location, sheet, row, raw in empty
    )
    keyed = (
        f"SELECT *, {key_sql} AS _record_key, {_hash_sql(columns)} AS _row_hash, "
        f"{deleted} AS _deleted FROM _landing_chunk"
    )
    # rows without a key were just quarantined; when there are none, no filter (and no second trim)
    new = "k._record_key IS NOT NULL" if empty else "true"
    if has_prior:
        con.execute(
            f"INSERT INTO __seen SELECT {key_sql} FROM _landing_chunk WHERE {key_sql} IS NOT NULL"
        )
        new += (
            " AND NOT EXISTS (SELECT 1 FROM __prior p WHERE p._record_key = k._record_key "
            "AND p._row_hash = k._row_hash)"
        )
    names = ", ".join(_q(c) for c in columns)
    (landed,) = con.execute(
        f"INSERT INTO {table_name(source)} ({names}, {', '.join(_LINEAGE)}) "
        f"SELECT {names}, ?, ?, ?, ?, {LOCATION}, {SHEET}, {ROW}, ?, _record_key, _row_hash, "
        f"'upsert', _deleted FROM ({keyed}) k WHERE {new}",
        [source.source, window.start, window.end, manifest.version, extracted_at],
    ).fetchone()
    manifest.landed += landed
    manifest.unchanged += table.num_rows - landed - len(empty)


def _tombstones(
    con: duckdb.DuckDBPyConnection, source: Source, window: Window, version: int, at: datetime
) -> int:
    """Land a delete for each record of the previous snapshot that this one no longer holds."""
    (count,) = con.execute(
        f"INSERT INTO {table_name(source)} (_source, _window_start, _window_end, _version, "
        "_extracted_at, _record_key, _op, _deleted) "
        "SELECT ?, ?, ?, ?, ?, _record_key, 'delete', true FROM __prior "
        "WHERE _record_key NOT IN (SELECT _record_key FROM __seen)",
        [source.source, window.start, window.end, version, at],
    ).fetchone()
    return count
