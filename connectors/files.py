"""Readers for the files departments hand over: CSV in the encodings they really use, XLSX with
title rows and merged headers, JSON, JSON Lines and Parquet.

Every row keeps the physical line where its record starts (1-based; for XLSX the sheet and row), so
a quarantined row can be found in the department's own file. CSV parsing is pyarrow's streaming
reader (about a million rows a second); the encoding is decoded in Python with bad bytes marked, so
one bad byte quarantines one row instead of failing the file. A record longer than the reader's
block, which pyarrow cannot parse, is read again on its own, and a field longer than any value a
department keeps quarantines its row, so one oversized field does not fail the file either.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import re
from collections.abc import Generator, Iterator, Sequence
from datetime import date, datetime, time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from onetable.connectors.reading import (
    LOCATION,
    ROW,
    SHEET,
    Chunk,
    ConnectorError,
    as_text,
    dotted,
    records_table,
    text_table,
)
from onetable.warehouse.ledger import QuarantineRecord

BATCH_ROWS = 50_000
_BLOCK = 1 << 20
# pyarrow's reader runs up to 32 blocks ahead of a slower consumer (the store), and a block is
# what one read returns: small reads (decoded, at most three times as long, within _BLOCK) keep
# that read-ahead to a few MiB whatever the file's size
_READ_BLOCK = 256 << 10
# A field may hold 128 KiB as UTF-8, room for Excel's 32,767 characters a cell in any script (four
# bytes at most each); a longer one is no department's value (a pasted document, a broken quote)
# and quarantines its row (C005).
MAX_FIELD_BYTES = 128 << 10
# A record that covers a whole read block stops pyarrow ("straddling object"): from its line, the
# records up to the first this long are parsed alone, as one block of at most _MAX_ALONE bytes.
_LONG_RECORD = _READ_BLOCK // 2
_MAX_ALONE = 16 << 20
# encodings in which the bytes of a newline and a quote are never part of another character, so
# records can be found and split in the raw bytes
_BYTE_SPLITTABLE = {"utf-8", "utf-8-sig", "gb18030", "gbk", "gb2312", "big5", "big5hkscs", "cp950"}
_HEAD_BYTES = 64 * 1024
_HEADER_SEARCH_ROWS = 30
_BAD = "\ufffd"  # what a byte the encoding cannot decode becomes
_BLANK_LINE = re.compile(rb"\n\r?\n")  # one pass, three times faster than two `in` tests


def detect_encoding(path: Path) -> str:
    """UTF-8 with BOM, UTF-8, or GB18030 (a superset of GBK and GB2312), in that order."""
    with path.open("rb") as f:
        if f.read(3) == codecs.BOM_UTF8:
            return "utf-8-sig"
        f.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while block := f.read(_BLOCK):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8"


class _Utf8Stream:
    """A byte stream read as UTF-8 (decoded from `encoding`, undecodable bytes as U+FFFD; passed
    through when already valid UTF-8), noting on the way whether any byte was bad and whether any
    newline fell inside quotes, so the common clean file needs no per-row checks. pyarrow reads it
    a decoded block at a time (a short read is no end of file), so nothing is copied twice."""

    def __init__(self, raw: io.BufferedIOBase, encoding: str | None, read_size: int = _READ_BLOCK):
        self._raw = raw
        self._read_size = read_size
        self._decoder = (
            codecs.getincrementaldecoder(encoding)(errors="replace") if encoding else None
        )
        self._pending = b""
        self._done = False
        self._quote_parity = 0
        self._last = b""
        self.closed = False
        self.bad_bytes = False
        self.quoted_newlines = False
        self.blank_lines = False

    def _next_block(self) -> bytes:
        block = self._raw.read(self._read_size)
        self._done = not block
        if self._decoder is None:
            return block
        text = self._decoder.decode(block, final=self._done)
        self.bad_bytes = self.bad_bytes or _BAD in text
        return text.encode("utf-8")

    def _scan_quotes(self, data: bytes) -> None:
        if self.quoted_newlines or (b'"' not in data and not self._quote_parity):
            return
        arr = np.frombuffer(data, dtype=np.uint8)
        parity = (np.cumsum(arr == 34) + self._quote_parity) % 2  # 1 inside quotes
        self.quoted_newlines = bool(parity[arr == 10].any())
        self._quote_parity = int(parity[-1]) if len(parity) else self._quote_parity

    def _scan_blank_lines(self, data: bytes) -> None:
        if self.blank_lines or not data:
            return
        edge = self._last + data[:2]
        self.blank_lines = bool(_BLANK_LINE.search(data) or _BLANK_LINE.search(edge))
        self._last = data[-2:]

    def read(self, size: int = -1) -> bytes:
        while not self._pending and not self._done:
            self._pending = self._next_block()
            self._scan_quotes(self._pending)
            self._scan_blank_lines(self._pending)
        if 0 <= size < len(self._pending):
            data, self._pending = self._pending[:size], self._pending[size:]
            return data
        data, self._pending = self._pending, b""
        return data

    def close(self) -> None:
        self.closed = True


def _head(path: Path, encoding: str) -> str:
    with path.open("rb") as f:
        return codecs.decode(f.read(_HEAD_BYTES), encoding, errors="replace")


def _sniff_delimiter(head: str) -> str:
    sample = "\n".join(head.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        return ","


def _clean_names(raw: Sequence[str | None]) -> list[str]:
    """Header cells as column names: trimmed, blanks named by position, duplicates numbered."""
    names: list[str] = []
    for i, cell in enumerate(raw, start=1):
        name = (cell or "").strip().lstrip("\ufeff") or f"列{i}"
        base, n = name, 2
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return names


def _find_header(rows: Sequence[Sequence[str | None]], expected: Sequence[str]) -> int | None:
    """The index of the first row holding any expected column name, or the first non-empty row
    when nothing is expected."""
    wanted = {e.strip() for e in expected}
    for i, row in enumerate(rows[:_HEADER_SEARCH_ROWS]):
        cells = {str(c).strip() for c in row if c not in (None, "")}
        if (wanted and cells & wanted) or (not wanted and cells):
            return i
    return None


class _LineCounter:
    """Physical lines of CSV records, from pyarrow's record numbers of the rows it rejected and
    the newlines inside the quoted values of the rows it kept."""

    def __init__(self, header_lines: int, header_records: int):
        self.header_lines = header_lines
        self.first_record = header_records + 1
        self.valid_seen = 0
        self.valid_newlines = 0
        self.invalid: list[tuple[int, str]] = []  # (pyarrow record number, raw text), in order
        self.invalid_adjusted = np.empty(0, dtype=np.int64)
        self.invalid_extra = np.zeros(1, dtype=np.int64)  # cumulative newlines inside them
        self.placed = 0  # invalid rows whose line is known

    def on_invalid(self, row: pacsv.InvalidRow) -> str:
        self.invalid.append((row.number, row.text))
        return "skip"

    def _refresh(self) -> None:
        if len(self.invalid_adjusted) != len(self.invalid):
            numbers = np.array([n for n, _ in self.invalid], dtype=np.int64)
            self.invalid_adjusted = numbers - np.arange(len(numbers))
            extra = np.array([t.count("\n") for _, t in self.invalid], dtype=np.int64)
            self.invalid_extra = np.concatenate([[0], np.cumsum(extra)])

    def valid_lines(self, newlines: np.ndarray) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """Lines of the next valid rows (their inner newline counts given), and the invalid rows
        now placed, with their lines."""
        self._refresh()
        k = self.valid_seen + np.arange(len(newlines), dtype=np.int64)
        # the k-th record number not taken by an invalid row
        before = np.searchsorted(self.invalid_adjusted, self.first_record + k, side="right")
        records = self.first_record + k + before
        inner = self.valid_newlines + np.concatenate([[0], np.cumsum(newlines)[:-1]]).astype(
            np.int64
        )
        lines = (
            self.header_lines
            + 1
            + (records - self.first_record)
            + inner
            + self.invalid_extra[before]
        )
        placed = self._place_invalid(newlines)
        self.valid_seen += len(newlines)
        self.valid_newlines += int(newlines.sum())
        return lines, placed

    def _place_invalid(self, newlines: np.ndarray | None) -> list[tuple[int, str]]:
        """Lines of the invalid rows that come before the end of this batch of valid rows (all
        that are left, at the end of the file)."""
        n = 0 if newlines is None else len(newlines)
        prefix = np.concatenate([[0], np.cumsum(newlines)]) if n else np.zeros(1, dtype=np.int64)
        out = []
        while self.placed < len(self.invalid):
            i = self.placed
            number, text = self.invalid[i]
            offset = (number - self.first_record - i) - self.valid_seen  # valid rows between
            if newlines is not None and offset > n:
                break
            inner = (
                self.valid_newlines
                + int(prefix[min(max(offset, 0), n)])
                + int(self.invalid_extra[i])
            )
            out.append((self.header_lines + 1 + (number - self.first_record) + inner, text))
            self.placed += 1
        return out

    def flush(self) -> list[tuple[int, str]]:
        self._refresh()
        return self._place_invalid(None)

    def next_line(self) -> int:
        """The line where the first record not yet read starts."""
        self._refresh()
        records = self.valid_seen + len(self.invalid)
        return self.header_lines + 1 + records + self.valid_newlines + int(self.invalid_extra[-1])


def read_csv(
    path: Path, *, source: str, expected: Sequence[str], encoding: str | None = None,
    delimiter: str | None = None, batch_rows: int = BATCH_ROWS,
) -> Iterator[Chunk]:  # fmt: skip
    """Stream a CSV file as chunks of text rows. Title rows above the header are passed over;
    rows with the wrong number of fields, with undecodable bytes or with a field longer than
    MAX_FIELD_BYTES are quarantined."""
    validated = encoding is None  # detection read the whole file: UTF-8 means valid UTF-8
    encoding = encoding or detect_encoding(path)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ConnectorError(f"source {source}: unknown encoding {encoding!r} for {path}") from None
    head = _head(path, encoding)
    delimiter = delimiter or _sniff_delimiter(head)
    reader = csv.reader(io.StringIO(head), delimiter=delimiter)
    rows, line_ends = [], []
    for row in reader:
        rows.append(row)
        line_ends.append(reader.line_num)
        if len(rows) >= _HEADER_SEARCH_ROWS:
            break
    at = _find_header(rows, expected)
    if at is None:
        raise ConnectorError(
            f"source {source}: no header row with any of the mapped columns "
            f"({', '.join(expected)}) in the first {_HEADER_SEARCH_ROWS} rows of {path.name}"
        )
    names = _clean_names(rows[at])
    location = str(path)
    args = (names, source, location, encoding, delimiter, batch_rows)
    # UTF-8 that detection validated passes through undecoded
    decoding = None if validated and encoding == "utf-8" else encoding
    with contextlib.ExitStack() as files:

        def opened(position: int) -> io.BufferedReader:
            """A handle of its own: a stopped reader's read-ahead may still be reading its own."""
            handle = files.enter_context(path.open("rb"))
            handle.seek(position)
            return handle

        # segments of the file, each parsed by its own pyarrow reader: the whole file, unless a
        # record longer than a block stops one at `stopped`
        offset, line, skip = 0, 1, at + 1
        counter = _LineCounter(header_lines=line_ends[at], header_records=skip)
        stream = _Utf8Stream(opened(0), decoding)
        scan = opened(0)
        while True:
            stopped = yield from _segment(stream, skip, _BLOCK, counter, *args)
            if stopped is None:
                return
            if codecs.lookup(encoding).name not in _BYTE_SPLITTABLE:
                raise ConnectorError(
                    f"source {source}: the record at line {stopped} of {path.name} is longer than "
                    f"the reader's block, and {encoding} records cannot be split in the raw bytes"
                )
            offset = _line_offset(scan, offset, stopped - line)
            end = _long_records_end(scan, offset, source, path, stopped)
            scan.seek(offset)
            alone = scan.read(end - offset)
            counter = _LineCounter(header_lines=stopped - 1, header_records=0)
            whole = _Utf8Stream(io.BytesIO(alone), decoding, read_size=len(alone))
            # one read, one block (decoded, bytes grow at most threefold: a bad byte becomes
            # U+FFFD), so nothing can stop this segment early
            yield from _segment(whole, 0, 3 * len(alone) + 3, counter, *args)
            if not scan.read(1):  # the file ended with it
                return
            offset, line, skip = end, stopped + alone.count(b"\n"), 0
            counter = _LineCounter(header_lines=line - 1, header_records=0)
            stream = _Utf8Stream(opened(end), decoding)


def _segment(
    stream: _Utf8Stream, skip: int, block: int, counter: _LineCounter, names: list[str],
    source: str, location: str, encoding: str, delimiter: str, batch_rows: int,
) -> Generator[Chunk, None, int | None]:  # fmt: skip
    """Parse the stream to its end in chunks; the line of the record that stopped pyarrow, a
    record longer than a block, if one did."""
    stopped = None
    batches = None
    try:
        batches = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=skip, use_threads=False, block_size=block
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                newlines_in_values=True,
                ignore_empty_lines=False,  # a blank line is no record, but it is a line
                invalid_row_handler=counter.on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                check_utf8=False,  # the stream is UTF-8 by construction: decoded here or validated
            ),
        )
        for batch in batches:
            for start in range(0, batch.num_rows, batch_rows):
                yield _csv_chunk(batch.slice(start, batch_rows), names, counter, stream,
                                 source, location, encoding, delimiter)  # fmt: skip
    except pa.ArrowInvalid as exc:  # "straddling object straddles two block boundaries"
        if "straddl" not in str(exc):
            raise
        # pyarrow parses its blocks in order: every record before the one that stopped it was read
        stopped = counter.next_line()
    finally:  # left early too: pyarrow's read-ahead thread must stop before the file closes
        if batches is not None:
            batches.close()
    rejected = _ragged(source, location, counter.flush(), len(names))
    if rejected:
        yield Chunk(
            rows=text_table(names, [[] for _ in names], location, None, []), rejected=rejected
        )
    return stopped


def _line_offset(raw: io.BufferedIOBase, offset: int, lines: int) -> int:
    """The byte offset `lines` newlines after `offset`."""
    raw.seek(offset)
    while lines:
        block = raw.read(_READ_BLOCK)
        found = block.count(b"\n")
        if found >= lines:
            return offset + int(np.flatnonzero(np.frombuffer(block, np.uint8) == 10)[lines - 1]) + 1
        lines -= found
        offset += len(block)
    return offset


def _long_records_end(
    raw: io.BufferedIOBase, offset: int, source: str, path: Path, line: int
) -> int:
    """The byte offset past the first record from `offset` (a record's start) that is at least
    _LONG_RECORD bytes long, or the file's end: records end at newlines outside quotes."""
    raw.seek(offset)
    start, at, quoted = offset, offset, 0
    while block := raw.read(_READ_BLOCK):
        data = np.frombuffer(block, np.uint8)
        inside = (np.cumsum(data == 34) + quoted) % 2
        ends = at + 1 + np.flatnonzero((data == 10) & (inside == 0))
        lengths = np.diff(ends, prepend=start)
        long = np.flatnonzero(lengths >= _LONG_RECORD)
        if len(long):
            return int(ends[long[0]])
        start = int(ends[-1]) if len(ends) else start
        quoted, at = int(inside[-1]), at + len(block)
        if at - offset > _MAX_ALONE:
            raise ConnectorError(
                f"source {source}: the record at line {line} of {path.name} runs on for more than "
                f"{_MAX_ALONE >> 20} MiB: an unclosed quote, or not a CSV file"
            )
    if quoted:  # else the rest of the file would be one record
        raise ConnectorError(
            f"source {source}: the record at line {line} of {path.name} opens a quote that is "
            "never closed"
        )
    return at


def _csv_chunk(
    batch: pa.RecordBatch, names: list[str], counter: _LineCounter, scanned: _Utf8Stream,
    source: str, location: str, encoding: str, delimiter: str,
) -> Chunk:  # fmt: skip
    columns = batch.columns
    n = batch.num_rows
    # The stream reads ahead of the parser, so its flags cover this batch: clean files skip these.
    newlines = np.zeros(n, dtype=np.int64)
    bad = np.zeros(n, dtype=bool)
    long = np.zeros(n, dtype=bool)
    blank = np.full(n, scanned.blank_lines)  # a blank line is no record
    for col in columns:
        # a column whose buffers (its whole batch's, for a slice) are smaller holds no longer field
        if col.get_total_buffer_size() > MAX_FIELD_BYTES:
            lengths = pc.binary_length(col)
            if pc.max(lengths).as_py() > MAX_FIELD_BYTES:
                long |= pc.greater(lengths, MAX_FIELD_BYTES).to_numpy(zero_copy_only=False)
        if scanned.quoted_newlines:
            newlines += pc.count_substring(col, "\n").to_numpy(zero_copy_only=False)
        if scanned.bad_bytes:
            bad |= pc.match_substring(col, _BAD).to_numpy(zero_copy_only=False)
        if scanned.blank_lines:
            blank &= pc.equal(pc.binary_length(col), 0).to_numpy(zero_copy_only=False)
    lines, placed = counter.valid_lines(newlines)
    rejected = _ragged(source, location, placed, len(names))
    table = pa.Table.from_batches([batch]).append_column(
        LOCATION, pa.array([location] * batch.num_rows)
    )
    table = table.append_column(SHEET, pa.nulls(batch.num_rows, pa.string()))
    table = table.append_column(ROW, pa.array(lines, type=pa.int64()))
    if bad.any():
        for i in np.flatnonzero(bad):
            values = [col[i].as_py() for col in columns]
            field = next(n for n, v in zip(names, values, strict=True) if _BAD in v)
            rejected.append(QuarantineRecord(
                source=source, rule_id="C002", field=field, location=location,
                row_number=int(lines[i]), raw=delimiter.join(values),
                reason=f"bytes that are not valid {encoding} (shown as {_BAD}); raw text rebuilt from its fields",
            ))  # fmt: skip
    long &= ~bad  # one reason a row
    for i in np.flatnonzero(long):
        values = [col[i].as_py() for col in columns]
        field, value = next(
            (name, v) for name, v in zip(names, values, strict=True)
            if len(v.encode()) > MAX_FIELD_BYTES
        )  # fmt: skip
        rejected.append(QuarantineRecord(
            source=source, rule_id="C005", field=field, location=location,
            row_number=int(lines[i]), raw=delimiter.join(values),
            reason=f"field {field} holds {len(value):,} characters ({len(value.encode()):,} bytes as UTF-8), more than the {MAX_FIELD_BYTES:,} bytes a field may hold; raw text rebuilt from its fields",
        ))  # fmt: skip
    drop = bad | blank | long
    if drop.any():
        table = table.filter(pa.array(~drop))
    return Chunk(rows=table, rejected=rejected)


def _ragged(
    source: str, location: str, placed: list[tuple[int, str]], width: int
) -> list[QuarantineRecord]:
    """Rows pyarrow could not split into the header's fields; blank lines are no records."""
    return [
        QuarantineRecord(
            source=source,
            rule_id="C001",
            location=location,
            row_number=line,
            raw=text,
            reason=f"wrong number of fields: the header has {width}",
        )
        for line, text in placed
        if text.strip()
    ]


def _cell_text(value: object) -> str | None:
    """An XLSX cell as text: dates as ISO dates, whole numbers without '.0'."""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return as_text(value)


def read_xlsx(
    path: Path, *, source: str, expected: Sequence[str], sheet: str | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[Chunk]:  # fmt: skip
    """Stream the sheets of a workbook whose header (found below any title rows, one or two rows
    deep for merged header cells) holds mapped columns; other sheets are reported, not read."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise ConnectorError(
            f"source {source}: {path.name} is not a readable XLSX file ({type(exc).__name__})"
        ) from None
    try:
        names = [sheet] if sheet else book.sheetnames
        if sheet and sheet not in book.sheetnames:
            raise ConnectorError(
                f"source {source}: {path.name} has no sheet {sheet!r} (it has {book.sheetnames})"
            )
        found = False
        for name in names:
            for chunk in _read_sheet(book[name], source, path, expected, batch_rows):
                found = True
                yield chunk
        if not found:
            raise ConnectorError(
                f"source {source}: no sheet of {path.name} has a header with any of the mapped "
                f"columns ({', '.join(expected)})"
            )
    finally:
        book.close()


def _trimmed(row: Sequence[object]) -> list[str | None]:
    """Header cells as text without the empty tail (read-only rows are padded to the sheet's width)."""
    cells = [_cell_text(c) for c in row]
    while cells and cells[-1] in (None, ""):
        cells.pop()
    return cells


def _read_sheet(
    ws, source: str, path: Path, expected: Sequence[str], batch_rows: int
) -> Iterator[Chunk]:
    rows = ws.iter_rows(values_only=True)
    head = []
    for row in rows:
        head.append(row)
        if len(head) >= _HEADER_SEARCH_ROWS:
            break
    at = _find_header([[_cell_text(c) for c in r] for r in head], expected)
    if at is None:
        return
    upper = _trimmed(head[at])
    width = len(upper)
    body_start = at + 1
    wanted = {e.strip() for e in expected}
    if at + 1 < len(head):  # a second header row under merged cells
        lower = _trimmed(head[at + 1])
        if wanted & {str(c).strip() for c in lower if c}:
            filled, last = [], None
            for cell in upper:
                last = cell if cell not in (None, "") else last
                filled.append(last)
            upper = [
                lo or up
                for up, lo in zip(filled, lower + [None] * (width - len(lower)), strict=False)
            ]
            width = max(width, len(lower))
            body_start = at + 2
    columns = _clean_names(upper + [None] * (width - len(upper)))
    location = str(path)
    pending: list[tuple[int, list[str | None]]] = []
    rejected: list[QuarantineRecord] = []

    def flush() -> Chunk:
        values = [[r[i] for _, r in pending] for i in range(len(columns))]
        chunk = Chunk(
            text_table(columns, values, location, ws.title, [n for n, _ in pending]), list(rejected)
        )
        pending.clear()
        rejected.clear()
        return chunk

    def body() -> Iterator[tuple[int, tuple]]:
        yield from enumerate(head[body_start:], start=body_start + 1)
        yield from enumerate(rows, start=len(head) + 1)

    for number, row in body():
        cells = [_cell_text(c) for c in row]
        if all(c in (None, "") for c in cells):
            continue
        if len(cells) > len(columns) and any(c not in (None, "") for c in cells[len(columns) :]):
            rejected.append(QuarantineRecord(
                source=source, rule_id="C001", location=location, sheet=ws.title, row_number=number,
                raw="\t".join(c or "" for c in cells),
                reason=f"cells beyond the header's {len(columns)} columns",
            ))  # fmt: skip
        else:
            pending.append((number, (cells + [None] * len(columns))[: len(columns)]))
        if len(pending) >= batch_rows:
            yield flush()
    yield flush()  # also for a sheet with a header and no rows: it was found and read


def read_jsonl(path: Path, *, source: str, batch_rows: int = BATCH_ROWS) -> Iterator[Chunk]:
    """JSON Lines: one object per line; a line that is not a JSON object is quarantined."""
    location = str(path)
    records: list[tuple[int, dict]] = []
    rejected: list[QuarantineRecord] = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not text.strip():
                continue
            try:
                record = json.loads(text)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
                if _BAD in text:
                    raise ValueError("bytes that are not valid UTF-8")
            except ValueError as exc:
                rejected.append(QuarantineRecord(
                    source=source, rule_id="C003", location=location, row_number=number, raw=text,
                    reason=f"not a JSON object: {str(exc)[:120]}",
                ))  # fmt: skip
                continue
            records.append((number, record))
            if len(records) >= batch_rows:
                yield Chunk(records_table(records, location), rejected)
                records, rejected = [], []
    if records or rejected:
        yield Chunk(records_table(records, location), rejected)


def read_json(
    path: Path, *, source: str, records_key: str | None = None, batch_rows: int = BATCH_ROWS
) -> Iterator[Chunk]:
    """A JSON document: a top-level array of objects, or an object holding one under
    `records_key`. A truncated array keeps the records before the break and quarantines the rest."""
    location = str(path)
    text = path.read_bytes().decode(detect_encoding(path), errors="replace")
    decoder = json.JSONDecoder()
    start = len(text) - len(text.lstrip())
    if records_key:
        try:
            items = dotted(json.loads(text), records_key)
        except (ValueError, KeyError) as exc:
            raise ConnectorError(
                f"source {source}: {path.name} has no record list at {records_key!r} ({exc})"
            ) from None
        if not isinstance(items, list):
            raise ConnectorError(f"source {source}: {path.name}: {records_key!r} is not a list")
        for at in range(0, len(items), batch_rows):
            part = items[at : at + batch_rows]
            yield _json_chunk(source, location, [(at + i + 1, r) for i, r in enumerate(part)], [])
        return
    if not text[start:].startswith("["):
        raise ConnectorError(
            f"source {source}: {path.name} is not a JSON array; name `records` for an object document"
        )
    pos, line, records, rejected = start + 1, 1 + text.count("\n", 0, start + 1), [], []
    last = start + 1
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos < len(text) and text[pos] == "]":
            break
        line += text.count("\n", last, pos)
        last = pos
        try:
            record, end = decoder.raw_decode(text, pos)
        except ValueError as exc:
            rejected.append(QuarantineRecord(
                source=source, rule_id="C003", location=location, row_number=line,
                raw=text[pos:], reason=f"truncated or malformed JSON from here on: {exc.msg}",
            ))  # fmt: skip
            break
        records.append((line, record))
        pos = end
        if len(records) >= batch_rows:
            yield _json_chunk(source, location, records, rejected)
            records, rejected = [], []
    if records or rejected:
        yield _json_chunk(source, location, records, rejected)


def _json_chunk(
    source: str, location: str, records: list[tuple[int, object]], rejected: list
) -> Chunk:
    good = []
    for line, record in records:
        if isinstance(record, dict):
            good.append((line, record))
        else:
            rejected.append(QuarantineRecord(
                source=source, rule_id="C003", location=location, row_number=line,
                raw=as_text(record), reason="a record that is not a JSON object",
            ))  # fmt: skip
    return Chunk(records_table(good, location), rejected)


def _parquet_text(values: pa.Array) -> pa.Array:
    """A Parquet column as the text a CSV export of it shows: ISO dates, integers and decimals as
    their digits, whole seconds without a fraction, nested values as JSON."""
    if pa.types.is_nested(values.type):
        return pa.array([as_text(v) for v in values.to_pylist()], pa.string())
    text = pc.cast(values, pa.string())
    if pa.types.is_timestamp(values.type) or pa.types.is_time(values.type):
        text = pc.replace_substring_regex(text, pattern=r"\.0+($|[+-])", replacement=r"\1")
    return text


def read_parquet(
    path: Path, *, source: str, expected: Sequence[str], batch_rows: int = BATCH_ROWS
) -> Iterator[Chunk]:
    """Stream a Parquet file in batches, every value as text (`_parquet_text`), each row numbered
    by its position in the file. A file that is not Parquet, or is cut short, fails the source."""
    location = str(path)

    def unreadable(exc: Exception) -> ConnectorError:
        return ConnectorError(
            f"source {source}: {path.name} is not a readable Parquet file "
            f"({type(exc).__name__}: {str(exc)[:120]})"
        )

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise unreadable(exc) from None
    with parquet:
        names = _clean_names(parquet.schema_arrow.names)
        if expected and not set(expected) & set(names):
            raise ConnectorError(
                f"source {source}: no column of {path.name} is one of the mapped columns "
                f"({', '.join(expected)})"
            )
        first = 1
        batches = parquet.iter_batches(batch_size=batch_rows)
        while True:
            try:
                batch = next(batches, None)
            except (pa.ArrowException, OSError) as exc:  # a damaged page
                raise unreadable(exc) from None
            if batch is None:
                break
            rows = range(first, first + batch.num_rows)
            first += batch.num_rows
            yield Chunk(
                text_table(names, [_parquet_text(c) for c in batch.columns], location, None, rows)
            )
        if first == 1:  # no rows: its columns still show, for the required-columns check
            yield Chunk(text_table(names, [[] for _ in names], location, None, []))
