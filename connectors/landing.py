"""Landing: raw rows as read, by (source, window), with lineage, written through the store and never
changed after commit (docs/architecture.md, "Landing" and "Runs and windows").

Each row carries its source, window and version, where it was read (file or table, sheet, physical
row), when, its record key and a row hash. Rows already landed as they are (a cursor window's
overlap, an unchanged row of a snapshot) are counted as unchanged, not landed twice; a snapshot's
records that vanished are landed as tombstones. The window, the quarantine and the counts are
committed in the caller's transaction with the rows.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import os
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from queue import Empty, Queue

import duckdb
import pyarrow as pa

from onetable.connectors.reading import LOCATION, ROW, SHEET, Chunk, ConnectorError
from onetable.schemas.contracts import ColumnDate, Source
from onetable.warehouse.ledger import QuarantineRecord, Transaction

FLUSH_ROWS = 50_000  # rows per insert, one Parquet file each: larger inserts raise the peak
# the reader holds a core while landing; the store's writing gets the others
_STORE_THREADS = max(1, (os.cpu_count() or 2) - 1)
# the reader's own DuckDB, for keys and hashes: on the critical path, so on every core (the store
# waits meanwhile); rows kept in order, nothing downloaded, nothing spilled
_HASHER = {
    "threads": os.cpu_count() or 1, "preserve_insertion_order": True, "temp_directory": "",
    "autoinstall_known_extensions": False, "autoload_known_extensions": False,
}  # fmt: skip
_RECORD_KEY = "_record_key"
_DERIVED = (_RECORD_KEY, "_row_hash", "_deleted")  # computed from each batch by the reader
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


def _key_sql(source: Source, columns: list[str]) -> str:
    """The record key; a key column the data lacks counts as empty (its rows are quarantined, or
    the source fails first if the column is required)."""

    def value(c: str) -> str:
        return _q(c) if c in columns else "NULL::VARCHAR"

    key = source.record_key
    if key.column:
        return f"nullif(trim({value(key.column)}), '')"
    parts = ", ".join(f"coalesce(trim({value(c)}), '')" for c in key.hash_of or [])
    return f"CASE WHEN concat({parts}) = '' THEN NULL ELSE md5(concat_ws(chr(31), {parts})) END"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _hash_sql(columns: list[str]) -> str:
    """md5 over the row's non-empty values in the order of their columns' names, with the sum of
    those columns' tags: a column added empty, or moved by the department, changes no row's hash,
    and a value moved to another column does. A tag is 48 bits of md5 of the name, so the sum
    names the set of filled columns; it costs far less than tagging each value."""
    if not columns:
        return "md5('')"
    ordered = sorted(columns)
    values = ", ".join(f"nullif({_q(c)}, '')" for c in ordered)
    tags = " + ".join(
        f"CASE WHEN {_q(c)} <> '' THEN {int(hashlib.md5(c.encode('utf-8')).hexdigest()[:12], 16)} "
        "ELSE 0 END"
        for c in ordered
    )
    return f"md5(concat_ws(chr(31), {values}, ({tags})::BIGINT::VARCHAR))"


class SnapshotShrinkError(ConnectorError):
    """A snapshot would end more of the source's records than its mapping allows: the delivery
    is held, not landed, until a person accepts it (`onetable run --accept-shrink SOURCE`)."""


def land_window(
    con: duckdb.DuckDBPyConnection, tx: Transaction, source: Source, window: Window,
    chunks: Iterable[Chunk], mapping_file: Path, accept_shrink: bool = False,
) -> Manifest:  # fmt: skip
    """Land one window of a source inside the caller's transaction; returns its manifest."""
    # not reset afterwards: an aborted transaction refuses any SET, and the connection is this
    # operation's own (open_store), closed with it
    con.execute(f"SET threads = {_STORE_THREADS}")
    with read_ahead(source, chunks, FLUSH_ROWS) as batches:
        return _land(con, tx, source, window, batches, mapping_file, accept_shrink)


def _land(
    con: duckdb.DuckDBPyConnection, tx: Transaction, source: Source, window: Window,
    batches: Iterator[Batch], mapping_file: Path, accept_shrink: bool,
) -> Manifest:  # fmt: skip
    manifest = Manifest(source=source.source, window=window)
    manifest.version = tx.commit_window(source.source, window.start, window.end)
    _prepare(con, source, window)
    mapped = set(source.declared_columns())
    known = set(landed_columns(con, source))
    extracted_at = datetime.now(UTC).replace(tzinfo=None)
    rejected: list[QuarantineRecord] = []
    checked = False

    has_prior = con.execute("SELECT count(*) > 0 FROM __prior").fetchone()[0]
    for batch in batches:
        for chunk in batch.chunks:
            manifest.read += chunk.read
            rejected.extend(chunk.rejected)
            table = chunk.rows
            columns = [c for c in table.column_names if c not in (LOCATION, SHEET, ROW)]
            if not checked and (table.num_rows or columns):  # an empty API page names no columns
                missing = [c for c in source.required if c not in columns]
                if missing:
                    raise ConnectorError(
                        f"source {source.source}: required column(s) {', '.join(missing)} missing "
                        f"from {table.column(LOCATION)[0].as_py() if table.num_rows else 'the data'}"
                        f"; see the mapping {mapping_file}"
                    )
                manifest.missing_columns = sorted(
                    c for c in source.declared_columns() if c not in columns
                )
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
        if batch.rows is not None:
            _insert(con, source, window, manifest, batch.rows, extracted_at, rejected, has_prior)
    manifest.landed -= _quarantine_duplicates(con, source, manifest, rejected)
    if source.read.mode == "snapshot":
        if not accept_shrink:
            _hold_a_shrunken_snapshot(con, source, manifest)
        manifest.tombstones = _tombstones(con, source, window, manifest.version, extracted_at)
    manifest.quarantined = tx.quarantine([_in_window(r, window) for r in rejected])
    tx.account(source.source, read=manifest.read, kept=manifest.landed,
               quarantined=manifest.quarantined, unchanged=manifest.unchanged,
               window_start=window.start, window_end=window.end)  # fmt: skip
    return manifest


@dataclass
class Batch:
    """Chunks read ahead, their rows joined with the columns derived from them (`_DERIVED`), or
    None when they hold no row."""

    chunks: list[Chunk]
    rows: pa.Table | None


def _derived_sql(source: Source, columns: list[str]) -> str:
    """Record key, row hash and deleted flag of each row, in the order of `_DERIVED`."""
    deleted = "false"
    if source.deleted and source.deleted.column in columns:
        values = ", ".join(_lit(v) for v in source.deleted.values)
        deleted = f"coalesce(trim({_q(source.deleted.column)}) IN ({values}), false)"
    return f"{_key_sql(source, columns)}, {_hash_sql(_hashed(source, columns))}, {deleted}"


def _hashed(source: Source, columns: list[str]) -> list[str]:
    """The columns whose values make a row's version: not a file's business-date column (an
    export date on every row is the delivery's, so the next month's file changes no record)."""
    date = getattr(source.location, "date", None)
    return [c for c in columns if not (isinstance(date, ColumnDate) and c == date.column)]


def _batch(source: Source, chunks: list[Chunk], hasher: duckdb.DuckDBPyConnection) -> Batch:
    tables = [c.rows for c in chunks if c.rows.num_rows]
    if not tables:
        return Batch(chunks, None)
    # DuckDB finds the table by this variable's name (a replacement scan); see _insert
    _landing_batch = pa.concat_tables(tables, promote_options="default")
    columns = [c for c in _landing_batch.column_names if c not in (LOCATION, SHEET, ROW)]
    derived = hasher.execute(
        f"SELECT {_derived_sql(source, columns)} FROM _landing_batch"
    ).to_arrow_table()
    for name, column in zip(_DERIVED, derived.columns, strict=True):
        _landing_batch = _landing_batch.append_column(name, column)
    return Batch(chunks, _landing_batch)


@contextlib.contextmanager
def read_ahead(
    source: Source, chunks: Iterable[Chunk], rows: int, depth: int = 1
) -> Iterator[Iterator[Batch]]:
    """Read in a thread from now on, while the store prepares and then writes: the thread parses
    and derives keys and hashes (the longer part, so its DuckDB may use every core), the caller's
    writes. Chunks are handed over in batches of at least `rows` rows, `depth` batches ahead (a
    CSV block is a few thousand rows: a queue of single chunks would stall the reader for as long
    as each insert takes). The reader's error is raised in the caller's thread, inside its
    transaction."""
    queue: Queue = Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        iterator = iter(chunks)
        try:
            with duckdb.connect(config=_HASHER) as hasher:
                group: list[Chunk] = []
                size = 0
                for chunk in iterator:
                    if stop.is_set():
                        return
                    group.append(chunk)
                    size += chunk.rows.num_rows
                    if size >= rows:
                        queue.put(_batch(source, group, hasher))
                        group, size = [], 0
                        _release_freed_memory()
                queue.put(_batch(source, group, hasher))
            queue.put(done)
        except BaseException as exc:  # handed to the consumer, raised in its thread
            queue.put(exc)
        finally:  # a reader stopped early closes its file or cursor here, in its own thread
            if isinstance(iterator, Generator):
                iterator.close()

    def batches() -> Iterator[Batch]:
        while (item := queue.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item

    thread = threading.Thread(target=produce, name="onetable-read", daemon=True)
    thread.start()
    try:
        yield batches()
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(Empty):
                queue.get(timeout=0.05)


def _libc_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc: its allocator does not need it
        return None


_MALLOC_TRIM = _libc_malloc_trim()


def _release_freed_memory() -> None:
    """Give the memory freed by the last batch back to the system: glibc keeps it in per-thread
    arenas and pyarrow's mimalloc in its pages, and with DuckDB's threads deriving batches the
    peak grew with the file (a 1,000,000-row file peaked 15 % above a 200,000-row one). Each call
    costs about a millisecond."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
    pa.default_memory_pool().release_unused()


def _in_window(record: QuarantineRecord, window: Window) -> QuarantineRecord:
    return replace(record, window_start=window.start, window_end=window.end)


def _insert(
    con: duckdb.DuckDBPyConnection, source: Source, window: Window, manifest: Manifest,
    table: pa.Table, extracted_at: datetime, rejected: list[QuarantineRecord], has_prior: bool,
) -> None:  # fmt: skip
    """One INSERT straight from the Arrow batch, its key and hash derived by the reader."""
    columns = [c for c in table.column_names if c not in (LOCATION, SHEET, ROW, *_DERIVED)]
    # DuckDB finds the batch by this variable's name (a replacement scan). A registered view would
    # keep every batch alive until the transaction commits: memory grew with the file's size.
    _landing_chunk = table
    key = source.record_key
    empty = []
    if table.column(_RECORD_KEY).null_count:
        empty = con.execute(
            f"SELECT {LOCATION}, {SHEET}, {ROW}, concat_ws(chr(9), "
            f"{', '.join(_q(c) for c in columns)}) FROM _landing_chunk "
            f"WHERE {_RECORD_KEY} IS NULL ORDER BY {ROW}"
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
    if has_prior:
        con.execute(
            "INSERT INTO __seen SELECT _record_key FROM _landing_chunk WHERE _record_key IS NOT NULL"
        )
        # counted by its own query, not as what the insert left over: a row the insert loses
        # then fails the window's accounting
        (unchanged,) = con.execute(
            f"SELECT count(*) FROM _landing_chunk k WHERE {_KEYED} AND {_STORED}"
        ).fetchone()
        manifest.unchanged += unchanged
    names = ", ".join(_q(c) for c in columns)
    (landed,) = con.execute(
        f"INSERT INTO {table_name(source)} ({names}, {', '.join(_LINEAGE)}) "
        f"SELECT {names}, ?, ?, ?, ?, {LOCATION}, {SHEET}, {ROW}, ?, _record_key, _row_hash, "
        f"'upsert', _deleted FROM _landing_chunk k WHERE {_new_rows(has_prior)}",
        [source.source, window.start, window.end, manifest.version, extracted_at],
    ).fetchone()
    manifest.landed += landed


_KEYED = "k._record_key IS NOT NULL"  # rows without a key are quarantined instead
_STORED = (
    "EXISTS (SELECT 1 FROM __prior p WHERE p._record_key = k._record_key "
    "AND p._row_hash = k._row_hash)"
)


def _new_rows(has_prior: bool) -> str:
    """The rows of a batch to insert: keyed, and not already stored as they are."""
    return f"{_KEYED} AND NOT {_STORED}" if has_prior else _KEYED


def _quarantine_duplicates(
    con: duckdb.DuckDBPyConnection, source: Source, manifest: Manifest,
    rejected: list[QuarantineRecord],
) -> int:  # fmt: skip
    """Take out of the window the rows whose record key this delivery holds more than once, and
    quarantine them (C006): with `record_key.latest_by` all but the latest, else all but one of
    exact copies, else every copy (which of two differing rows is the record is not ours to
    guess). Returns the rows taken out; the caller's accounting sees them as quarantined."""
    latest = source.record_key.latest_by
    columns = [c for c in landed_columns(con, source) if c not in _LINEAGE]
    this = "_window_end = ? AND _window_start IS NOT DISTINCT FROM ? AND _version = ?"
    params = [manifest.window.end, manifest.window.start, manifest.version]
    repeated = (
        f"SELECT _record_key FROM {table_name(source)} WHERE {this} AND _op = 'upsert' "
        "GROUP BY _record_key HAVING count(*) > 1"
    )
    if not con.execute(f"SELECT count(*) FROM ({repeated})", params).fetchone()[0]:
        return 0  # the common case, found by one column's aggregate
    by_key = "PARTITION BY _record_key"
    if latest:
        order = f"try_cast({_q(latest)} AS TIMESTAMP) DESC NULLS LAST, {_q(latest)} DESC NULLS LAST, _row DESC"
        keep = f"row_number() OVER ({by_key} ORDER BY {order}) = 1"
    else:
        same = f"min(_row_hash) OVER ({by_key}) = max(_row_hash) OVER ({by_key})"
        keep = f"{same} AND row_number() OVER ({by_key} ORDER BY _row) = 1"
    copies = (
        f"SELECT _record_key, {LOCATION}, {SHEET}, {ROW}, "
        f"concat_ws(chr(9), {', '.join(map(_q, columns))}) AS raw, count(*) OVER ({by_key}) AS n, "
        f"{keep} AS keeps FROM {table_name(source)} WHERE {this} AND _op = 'upsert' "
        f"AND _record_key IN ({repeated})"
    )
    rows = con.execute(
        f"SELECT {LOCATION}, {SHEET}, {ROW}, raw, n, keeps, "
        f"max({ROW}) FILTER (WHERE keeps) OVER ({by_key}) FROM ({copies}) ORDER BY {ROW}",
        params * 2,
    ).fetchall()
    # each repeated key has a copy not taken, so `out` is never empty
    out = [
        (loc, sheet, row, raw, n, kept)
        for loc, sheet, row, raw, n, keeps, kept in rows
        if not keeps
    ]
    field = source.record_key.column or ",".join(source.record_key.hash_of or [])
    for location, sheet, row, raw, n, kept in out:
        if kept is None:
            reason = (
                f"the record key is in this delivery {n} times with different values, so no "
                "copy is taken: correct the export, or name record_key.latest_by"
            )
        elif latest:
            reason = f"the record key is in this delivery {n} times; row {kept}, latest by {latest}, was taken"
        else:
            reason = f"an exact copy of row {kept} of this delivery, which was taken"
        rejected.append(QuarantineRecord(source=source.source, rule_id="C006", location=location,
                                         sheet=sheet, row_number=row, field=field, raw=raw,
                                         reason=reason))  # fmt: skip
    _landing_duplicates = pa.table({
        "loc": [r[0] for r in out], "sheet": [r[1] for r in out], "row": [r[2] for r in out],
    })  # fmt: skip
    (removed,) = con.execute(
        f"DELETE FROM {table_name(source)} t USING _landing_duplicates d WHERE {this} "
        f"AND t.{LOCATION} IS NOT DISTINCT FROM d.loc AND t.{SHEET} IS NOT DISTINCT FROM d.sheet "
        f"AND t.{ROW} = d.row",
        params,
    ).fetchone()
    return removed


def _hold_a_shrunken_snapshot(
    con: duckdb.DuckDBPyConnection, source: Source, manifest: Manifest
) -> None:
    """Refuse a delivery that would end more than the mapping's `max_shrink` share of the last
    snapshot's records: a truncated export or a header-only file, far more often than a real
    event. Raised inside the transaction, so nothing of it is committed."""
    (before, ended) = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE _record_key NOT IN (SELECT _record_key FROM __seen)) "
        "FROM __prior"
    ).fetchone()
    limit = source.read.max_shrink
    if ended > limit * before:  # with any share under 1, ending all of them is held too
        where = ", ".join(manifest.locations) or "a delivery with no rows"
        raise SnapshotShrinkError(
            f"source {source.source}: {where}, the snapshot as of "
            f"{manifest.window.end - timedelta(days=1):%Y-%m-%d}, "
            f"would end {ended} of the {before} records of the last "
            f"snapshot ({ended / before:.0%}; the mapping allows {limit:.0%}), so it is held, not "
            f"landed, and the period runs on the last good snapshot. If the records really ended, "
            f"land it with `onetable run --accept-shrink {source.source}`"
        )


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
