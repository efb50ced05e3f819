"""What every reader yields: chunks of raw rows as text, with where each row came from, and the rows
it could not parse, with their raw text and the reason (docs/architecture.md, "Never": lose a row
silently)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from onetable.warehouse.ledger import QuarantineRecord

# Lineage columns every reader fills; the landing adds the rest (see connectors.landing).
LOCATION, SHEET, ROW = "_location", "_sheet", "_row"
_LINEAGE = pa.schema([(LOCATION, pa.string()), (SHEET, pa.string()), (ROW, pa.int64())])


class ConnectorError(Exception):
    """A source cannot be read at all (unreachable, malformed beyond a row, a required column
    missing). The message names the source and what to fix; it never holds a personal value."""


@dataclass
class Chunk:
    """Rows read from one place: source columns as text, plus _location, _sheet, _row."""

    rows: pa.Table
    rejected: list[QuarantineRecord] = field(default_factory=list)

    @property
    def read(self) -> int:
        return self.rows.num_rows + len(self.rejected)


def text_table(
    columns: Sequence[str], values: Sequence[Sequence[str | None]], location: str,
    sheet: str | None, rows: Sequence[int],
) -> pa.Table:  # fmt: skip
    """A chunk's table from column-wise text values and the rows' physical positions."""
    arrays = [pa.array(v, type=pa.string()) for v in values]
    n = len(rows)
    lineage = [
        pa.array([location] * n, type=pa.string()),
        pa.array([sheet] * n, type=pa.string()),
        pa.array(rows, type=pa.int64()),
    ]
    schema = pa.schema([(c, pa.string()) for c in columns] + list(_LINEAGE))
    return pa.Table.from_arrays(arrays + lineage, schema=schema)


def as_text(value: Any) -> str | None:
    """A JSON or spreadsheet value as the text a department would see; nested values as JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))  # beyond 15 digits a float's tail is noise: keep its notation
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def records_table(
    records: Iterable[tuple[int, dict[str, Any]]], location: str, sheet: str | None = None
) -> pa.Table:
    """A chunk's table from (row, record) pairs whose keys may differ from record to record."""
    columns: dict[str, None] = {}
    rows, items = [], []
    for row, record in records:
        rows.append(row)
        items.append(record)
        for key in record:
            columns.setdefault(str(key), None)
    names = list(columns)
    values = [[as_text(item.get(name)) for item in items] for name in names]
    return text_table(names, values, location, sheet, rows)


def dotted(document: Any, path: str) -> Any:
    """document['a']['b'] for path 'a.b'; KeyError naming the missing part."""
    for part in path.split("."):
        if not isinstance(document, dict) or part not in document:
            raise KeyError(part)
        document = document[part]
    return document
