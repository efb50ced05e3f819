"""Read a table or a query from any database SQLAlchemy reaches, streamed in chunks through a
server-side cursor so memory stays flat whatever the table's size. A department's database is
only read: SQLite is opened read-only (a missing file is an error, not a new empty database),
PostgreSQL and MariaDB/MySQL read in a read-only transaction."""

from __future__ import annotations

import contextlib
import io
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import URL

from onetable.connectors.landing import Window
from onetable.connectors.reading import LOCATION, ROW, SHEET, Chunk, ConnectorError
from onetable.schemas.contracts import Source, SqlLocation
from onetable.warehouse.masking import scrub

BATCH_ROWS = 50_000
# pyarrow's reader runs up to 32 blocks ahead of a slower consumer (the store): small blocks keep
# that read-ahead to a few MiB, so memory does not grow with the table
_BLOCK = 256 << 10


def _sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL; None for an in-memory database or a URI of its own."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return None if "uri" in url.query else Path(url.database).absolute()


def _read_only(url: URL, sqlite_file: Path | None) -> URL:
    """SQLite's read-only URI: sqlite3 would otherwise create a missing file, empty."""
    if sqlite_file is None:
        return url
    return url.set(database=f"file:{urllib.parse.quote(str(sqlite_file))}").update_query_dict(
        {"mode": "ro", "uri": "true"}
    )


def _begin_read_only(conn: sa.Connection) -> None:
    """Make the transaction that reads read-only, where the server has one: a mapping's query
    cannot then change the department's data."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SET TRANSACTION READ ONLY"))  # the first statement of the read
    elif conn.dialect.name in ("mysql", "mariadb"):
        conn.execute(sa.text("SET SESSION TRANSACTION READ ONLY"))
        conn.commit()  # the read's own transaction, which begins next, is read-only


def _connect(engine: sa.Engine, source: str, conn_id: str, retries: int, backoff_s: float,
             sqlite_file: Path | None) -> sa.Connection:  # fmt: skip
    for attempt in range(retries + 1):
        try:
            return engine.connect()
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            if sqlite_file is not None and not sqlite_file.exists():  # no use retrying
                raise ConnectorError(
                    f"source {source}: the SQLite database file {sqlite_file} of connection "
                    f"{conn_id!r} does not exist"
                ) from None
            if attempt == retries:
                reason = (
                    scrub(str(exc.orig).strip().splitlines()[0]) if exc.orig else type(exc).__name__
                )
                raise ConnectorError(
                    f"source {source}: cannot reach the database of connection {conn_id!r} after "
                    f"{retries + 1} attempts: {reason}"
                ) from None
            time.sleep(backoff_s * 2**attempt)
    raise AssertionError("unreachable")


def _select(
    conn: sa.Connection, location: SqlLocation, cursor: str | None
) -> tuple[sa.Select, list[str]]:
    """SELECT every column cast to text, so the landing holds values as the database shows them."""
    if location.table:
        schema, _, name = location.table.rpartition(".")
        table = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=conn)
        columns = table.c
    else:
        probe = conn.execute(sa.text(f"SELECT * FROM ({location.query}) q WHERE 1 = 0"))
        names = list(probe.keys())
        probe.close()
        columns = sa.text(location.query).columns(*[sa.column(n) for n in names]).subquery("q").c
    names = [c.name for c in columns]
    if cursor and cursor not in names:
        raise ConnectorError(f"cursor column {cursor!r} is not among the columns")
    stmt = sa.select(*[sa.cast(c, sa.Text).label(c.name) for c in columns])
    return stmt, names


def _cursor_batches(
    conn: sa.Connection, stmt: sa.Select, names: list[str], batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """Any database: rows through a server-side cursor, turned into Arrow column by column."""
    result = conn.execution_options(stream_results=True, max_row_buffer=batch_rows).execute(stmt)
    schema = pa.schema([(n, pa.string()) for n in names])
    for rows in result.partitions(batch_rows):
        columns = list(zip(*rows, strict=True))
        yield pa.RecordBatch.from_arrays([pa.array(c, pa.string()) for c in columns], schema=schema)


class _CopyStream(io.RawIOBase):
    """psycopg's COPY data (a message a row) as a readable byte stream."""

    def __init__(self, copy):
        self._copy = copy
        self._buffer = bytearray()

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:
        while len(self._buffer) < len(target):
            data = self._copy.read()
            if not data:
                break
            self._buffer += data
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        del self._buffer[:n]
        return n


def _copy_batches(
    conn: sa.Connection, stmt: sa.Select, names: list[str], batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """PostgreSQL: the same SELECT through COPY ... TO STDOUT as CSV, parsed by pyarrow, several
    times faster than fetching rows into Python. NULL and the empty string stay apart."""
    import psycopg

    compiled = stmt.compile(dialect=conn.dialect)
    raw = conn.connection.driver_connection
    copy_sql = f"COPY ({compiled.string}) TO STDOUT (FORMAT csv)"
    finished = False
    try:
        with raw.cursor() as cur, cur.copy(copy_sql, compiled.params) as copy:
            reader = pacsv.open_csv(
                io.BufferedReader(_CopyStream(copy), buffer_size=1 << 20),
                read_options=pacsv.ReadOptions(
                    column_names=names, use_threads=False, block_size=_BLOCK
                ),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names},
                    strings_can_be_null=True,  # an unquoted empty field is NULL in COPY's CSV
                    quoted_strings_can_be_null=False,
                ),
            )
            try:
                for batch in reader:
                    for start in range(0, batch.num_rows, batch_rows):
                        yield batch.slice(start, batch_rows)
                finished = True
            finally:
                reader.close()
                if not finished:  # left early: stop the server sending, or the connection hangs
                    raw.cancel_safe()
    except psycopg.errors.QueryCanceled:
        if finished:
            raise


def _bound_for(conn: sa.Connection):
    """A window bound as the database compares it. SQLite stores times as text, so a bound is
    written the way its rows are (`2026-02-01 00:00:00`), not as SQLAlchemy's DATETIME text with
    microseconds, which would put a row stamped at midnight into the window before."""
    if conn.dialect.name == "sqlite":
        return lambda moment: sa.literal(moment.isoformat(sep=" "), sa.String)
    return lambda moment: moment


def read_sql(
    url: URL, location: SqlLocation, *, source: Source, window: Window,
    batch_rows: int = BATCH_ROWS, retries: int = 3, backoff_s: float = 1.0,
) -> Iterator[Chunk]:  # fmt: skip
    """Stream the rows of the window [start - overlap, end) by the cursor column, or every row
    for a snapshot source. `_row` is the row's position in the read: no ORDER BY, so that a large
    table is not sorted on the department's server for us."""
    sqlite_file = _sqlite_file(url)
    engine = sa.create_engine(_read_only(url, sqlite_file))
    where = location.table or "query"
    try:
        with _connect(
            engine, source.source, location.conn_id, retries, backoff_s, sqlite_file
        ) as conn:
            _begin_read_only(conn)
            cursor = source.read.cursor
            try:
                stmt, names = _select(conn, location, cursor)
            except sa.exc.NoSuchTableError:  # the mapping's own name: nothing to scrub
                raise ConnectorError(
                    f"source {source.source}: the database of connection {location.conn_id!r} "
                    f"has no table {location.table!r}"
                ) from None
            except (ConnectorError, sa.exc.ProgrammingError) as exc:
                raise ConnectorError(
                    f"source {source.source}: cannot read {where} of connection "
                    f"{location.conn_id!r}: {scrub(str(exc).splitlines()[0])}"
                ) from None
            if cursor:
                col = sa.column(cursor)
                bound = _bound_for(conn)
                if window.start is not None:
                    stmt = stmt.where(col >= bound(window.start - source.read.overlap))
                stmt = stmt.where(col < bound(window.end))
            label = f"{location.conn_id}/{where}"
            batches = (
                _copy_batches(conn, stmt, names, batch_rows)
                if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"
                else _cursor_batches(conn, stmt, names, batch_rows)
            )
            seen = 0
            with contextlib.closing(batches):  # end the read before the connection closes
                for batch in batches:
                    n = batch.num_rows
                    rows = pa.array(range(seen + 1, seen + n + 1), type=pa.int64())
                    table = pa.Table.from_batches([batch])
                    table = table.append_column(LOCATION, pa.array([label] * n, pa.string()))
                    table = table.append_column(SHEET, pa.nulls(n, pa.string()))
                    yield Chunk(table.append_column(ROW, rows))
                    seen += n
    finally:
        engine.dispose()
