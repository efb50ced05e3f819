"""Read a table or a query from any database SQLAlchemy reaches, streamed in chunks through a
server-side cursor so memory stays flat whatever the table's size."""

from __future__ import annotations

import time
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import URL

from onetable.connectors.landing import Window
from onetable.connectors.reading import Chunk, ConnectorError, text_table
from onetable.schemas.contracts import Source, SqlLocation
from onetable.warehouse.masking import scrub

BATCH_ROWS = 50_000


def _connect(engine: sa.Engine, source: str, conn_id: str, retries: int, backoff_s: float):
    for attempt in range(retries + 1):
        try:
            return engine.connect()
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
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


def read_sql(
    url: URL, location: SqlLocation, *, source: Source, window: Window,
    batch_rows: int = BATCH_ROWS, retries: int = 3, backoff_s: float = 1.0,
) -> Iterator[Chunk]:  # fmt: skip
    """Stream the rows of the window [start - overlap, end) by the cursor column, or every row
    for a snapshot source. `_row` is the row's position in the read (ordered by cursor and key)."""
    engine = sa.create_engine(url)
    where = location.table or "query"
    try:
        with _connect(engine, source.source, location.conn_id, retries, backoff_s) as conn:
            cursor = source.read.cursor
            try:
                stmt, names = _select(conn, location, cursor)
            except (ConnectorError, sa.exc.NoSuchTableError, sa.exc.ProgrammingError) as exc:
                raise ConnectorError(
                    f"source {source.source}: cannot read {where} of connection "
                    f"{location.conn_id!r}: {scrub(str(exc).splitlines()[0])}"
                ) from None
            order = []
            if cursor:
                col = sa.column(cursor)
                if window.start is not None:
                    stmt = stmt.where(col >= window.start - source.read.overlap)
                stmt = stmt.where(col < window.end)
                order.append(col)
            if source.record_key.column:
                order.append(sa.column(source.record_key.column))
            stmt = stmt.order_by(*order) if order else stmt
            label = f"{location.conn_id}/{where}"
            result = conn.execution_options(stream_results=True, max_row_buffer=batch_rows).execute(
                stmt
            )
            seen = 0
            for rows in result.partitions(batch_rows):
                values = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
                yield Chunk(
                    text_table(names, values, label, None, range(seen + 1, seen + len(rows) + 1))
                )
                seen += len(rows)
    finally:
        engine.dispose()
