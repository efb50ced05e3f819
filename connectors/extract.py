"""Extraction: for each configured source, read its next window through the connector its YAML
names and land it, committing the rows, the quarantine, the counts and the watermark together.

A source that fails (unreachable, malformed, a required column missing) is reported and the others
go on; nothing of its window is committed, so the next run extracts it again.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow.compute as pc

from onetable.connectors import connections
from onetable.connectors.files import read_csv, read_json, read_jsonl, read_parquet, read_xlsx
from onetable.connectors.http import read_http
from onetable.connectors.landing import Manifest, Window, land_window
from onetable.connectors.reading import Chunk, ConnectorError
from onetable.connectors.sql import read_sql
from onetable.schemas.contracts import (
    NAME_DATE,
    ColumnDate,
    Contracts,
    FileLocation,
    NameDate,
    Source,
)
from onetable.warehouse.ledger import AccountingError, transaction, watermark
from onetable.warehouse.masking import scrub
from onetable.warehouse.periods import Period
from onetable.warehouse.store import StoreSettings, open_store

STAGE = "extract"
_DATE_DECLARATIONS = "`{name: <regex>}`, `{column: <source column>}` or `delivered`"


@dataclass
class Outcome:
    """One source's result in a run: the windows it landed, or why it failed or had nothing new."""

    source: str
    manifests: list[Manifest] = field(default_factory=list)
    error: str | None = None
    note: str | None = None


def _expected(source: Source) -> list[str]:
    """Source columns a header must show: the required ones, else every mapped one."""
    return list(source.required) or source.declared_columns()


def _committed_window(con, source: str, end: datetime) -> Window | None:
    row = con.execute(
        "SELECT window_start FROM meta.windows WHERE source = ? AND window_end = ? LIMIT 1",
        [source, end],
    ).fetchone()
    return Window(row[0], end) if row else None


def extract_source(
    settings: StoreSettings, source: Source, mapping_file: Path, *, end: datetime, run_id: str,
    data_root: Path | None = None, force: bool = False, environ: Mapping[str, str] = os.environ,
    accept_shrink: bool = False,
) -> Outcome:  # fmt: skip
    """Extract the window of one source from its last committed window ending by `end` to `end`,
    unless one ends at `end` already (with `force`, extract that one again, as a new version).
    Windows that later periods landed are not this period's input and do not stop it."""
    if isinstance(source.location, FileLocation):
        if data_root is None:
            raise ConnectorError(f"source {source.source}: a file source needs a data root")
        return _extract_files(settings, source, mapping_file, end=end, run_id=run_id,
                              data_root=data_root, force=force, accept_shrink=accept_shrink)  # fmt: skip
    with open_store(settings) as con:
        last = watermark(con, source.source, by=end)
        if force:
            window = _committed_window(con, source.source, end)
            if window is None:
                return Outcome(
                    source.source, note=f"no committed window ends at {end:%Y-%m-%d %H:%M}"
                )
        elif last == end:
            return Outcome(source.source, note=f"already extracted up to {last:%Y-%m-%d %H:%M}")
        else:
            window = Window(last, end)
        with transaction(con, run_id=run_id, stage=STAGE) as tx:
            manifest = land_window(con, tx, source, window, _chunks(source, window, environ),
                                   mapping_file, accept_shrink)  # fmt: skip
    return Outcome(source.source, [manifest])


def _chunks(source: Source, window: Window, environ: Mapping[str, str]) -> Iterator[Chunk]:
    location = source.location
    if location.kind == "sql":
        return read_sql(connections.sqlalchemy_url(location.conn_id, environ), location,
                        source=source, window=window, retries=location.retries,
                        backoff_s=location.backoff_s)  # fmt: skip
    token = connections.secret(location.conn_id, environ) if location.conn_id else None
    base = connections.base_url(location.conn_id, environ) if location.url.startswith("/") else ""
    return read_http(location, source=source, window=window, token=token, base_url=base)


def _midnight_after(day: date) -> datetime:
    """The end of the window a file dated `day` stands for."""
    return datetime.combine(day + timedelta(days=1), datetime.min.time())


def _day_in_name(path: Path, source: Source, mapping_file: Path) -> date:
    """The first real day the name pattern finds in the file's name."""
    spec: NameDate = source.location.date  # type: ignore[union-attr,assignment]
    pattern = re.compile(spec.name)
    for match in pattern.finditer(path.name):
        if set(pattern.groupindex) == {"year", "month", "day"}:
            parts = [match["year"], match["month"], match["day"]]
        else:  # one group: a date written 20260131 or 2026-01-31
            digits = re.sub(r"\D", "", match[1] or "")
            parts = [digits[:4], digits[4:6], digits[6:]] if len(digits) == 8 else []
        try:
            return date(*(int(p) for p in parts))
        except (TypeError, ValueError):
            continue
    wanted = "`20260131` or `2026-01-31`" if spec.name == NAME_DATE else f"matching {spec.name!r}"
    raise ConnectorError(
        f"source {source.source}: the name of {path} has no date ({wanted}); declare how the "
        f"files' date is known in `location.date` of {mapping_file}: {_DATE_DECLARATIONS}"
    )


def _day_in_column(path: Path, source: Source, mapping_file: Path) -> date:
    """The latest day in the file's date column, read with the file's own reader; a day after
    today or before 1900 is a typo (the standardizer flags it), not the file's date."""
    from onetable.linkage.standardize import parse_date

    location: FileLocation = source.location  # type: ignore[assignment]
    spec: ColumnDate = location.date  # type: ignore[assignment]
    found, latest = False, None
    for chunk in read_file(path, location, source):
        if spec.column not in chunk.rows.column_names:
            continue
        found = True
        for raw in pc.unique(chunk.rows.column(spec.column)).to_pylist():
            value, flags = parse_date(raw, tuple(spec.formats))
            if value is not None and "date_implausible" not in flags:
                latest = max(latest or value, value)
    if latest is None:
        what = "no date" if found else "no such column"
        raise ConnectorError(
            f"source {source.source}: {path} has {what} in its column {spec.column!r}, which "
            f"`location.date` of {mapping_file} names as the file's date"
        )
    return date.fromisoformat(latest)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def read_file(path: Path, location: FileLocation, source: Source) -> Iterator[Chunk]:
    """The reader the file's format names."""
    if location.format == "csv":
        return read_csv(path, source=source.source, expected=_expected(source),
                        encoding=location.encoding, delimiter=location.delimiter)  # fmt: skip
    if location.format == "xlsx":
        return read_xlsx(
            path, source=source.source, expected=_expected(source), sheet=location.sheet
        )
    if location.format == "jsonl":
        return read_jsonl(path, source=source.source)
    if location.format == "parquet":
        return read_parquet(path, source=source.source, expected=_expected(source))
    return read_json(path, source=source.source, records_key=location.records)


def _extract_files(
    settings: StoreSettings, source: Source, mapping_file: Path, *, end: datetime, run_id: str,
    data_root: Path, force: bool, accept_shrink: bool,
) -> Outcome:  # fmt: skip
    """Each new file (by checksum) whose window (`FileLocation.date`) ends by `end` is its own
    window, in date order; a file held (SnapshotShrinkError) stops the source there, so no later
    file is diffed past it. A file landed before keeps the window it landed in, unread."""
    location: FileLocation = source.location  # type: ignore[assignment]
    outcome = Outcome(source.source)
    paths = sorted((p for p in data_root.glob(location.path) if p.is_file()), key=lambda p: p.name)
    named = isinstance(location.date, NameDate)
    if named:  # known from the names alone: only the files due are hashed
        ends = {p: _midnight_after(_day_in_name(p, source, mapping_file)) for p in paths}
        paths = [p for p in paths if ends[p] <= end]
    with ThreadPoolExecutor(max_workers=1) as pool:
        digests = pool.map(_sha256, paths)  # read while the store opens
        with open_store(settings) as con:
            # the same bytes for the same day were landed already; the same bytes for a
            # later day are a new snapshot in which nothing changed
            landed = con.execute(
                "SELECT sha256, window_end FROM meta.files WHERE source = ? ORDER BY window_end",
                [source.source],
            ).fetchall()
            first_landed: dict[str, datetime] = {}
            for digest, window_end in landed:
                first_landed.setdefault(digest, window_end)
            due = []
            for path, digest in zip(paths, digests, strict=True):
                if named:
                    window_end = ends[path]
                elif digest in first_landed:
                    window_end = first_landed[digest]
                elif location.date == "delivered":
                    window_end = end
                else:
                    window_end = _midnight_after(_day_in_column(path, source, mapping_file))
                if window_end <= end:
                    due.append((window_end, path, digest))
            done = set(landed)
            todo = [
                (window_end, path, digest)
                for window_end, path, digest in sorted(due, key=lambda d: (d[0], d[1].name))
                if (digest, window_end) not in done or (force and window_end == end)
            ]
            if not todo:
                outcome.note = "no new file"
            for window_end, path, digest in todo:
                window = _committed_window(con, source.source, window_end)
                if window is None:
                    previous = con.execute(
                        "SELECT max(window_end) FROM meta.windows WHERE source = ? AND window_end < ?",
                        [source.source, window_end],
                    ).fetchone()[0]
                    window = Window(previous, window_end)
                with transaction(con, run_id=run_id, stage=STAGE) as tx:
                    manifest = land_window(con, tx, source, window, read_file(path, location, source),
                                           mapping_file, accept_shrink)  # fmt: skip
                    tx.record_file(source.source, str(path), digest, path.stat().st_size, window_end,
                                   manifest.version)  # fmt: skip
                outcome.manifests.append(manifest)
                _after_landing(path, location, data_root)  # committed: the drop folder may let go
    return outcome


def _after_landing(path: Path, location: FileLocation, data_root: Path) -> None:
    """A drop folder holds personal data in plain text: empty it once the file is landed."""
    if location.after_landing == "delete":
        path.unlink()
    elif location.after_landing == "move":
        archive = data_root / (location.archive or "")
        archive.mkdir(parents=True, exist_ok=True)
        shutil.move(path, archive / path.name)


def extract_all(
    settings: StoreSettings, contracts: Contracts, *, end: datetime, run_id: str,
    data_root: Path | None = None, force: bool = False, only: list[str] | None = None,
    environ: Mapping[str, str] = os.environ, accept_shrink: Collection[str] = (),
) -> list[Outcome]:  # fmt: skip
    """Extract every configured source (or `only` these); one source's failure stops no other.

    A window whose rows do not add up is not committed, and after the other sources have run the
    whole extraction fails with the AccountingError of each: a lost row is onetable's defect, and
    nothing may be built on the windows that did land as though all was well."""
    outcomes = []
    lost: list[str] = []
    for name, source in contracts.sources.items():
        if only and name not in only:
            continue
        try:
            outcomes.append(extract_source(settings, source, contracts.source_file(name), end=end,
                                           run_id=run_id, data_root=data_root, force=force,
                                           environ=environ, accept_shrink=name in accept_shrink))  # fmt: skip
        except ConnectorError as exc:
            outcomes.append(Outcome(name, error=str(exc)))
        except AccountingError as exc:  # counts only: nothing personal in the text
            lost.append(str(exc))
            outcomes.append(Outcome(name, error=str(exc)))
        except Exception as exc:  # a driver's or a library's error: its text may hold a value
            outcomes.append(
                Outcome(name, error=f"source {name}: {type(exc).__name__}: {scrub(str(exc))[:300]}")
            )
    if lost:
        raise AccountingError("\n".join(lost))
    return outcomes


def _at(moment: datetime | None) -> str:
    return "the start" if moment is None else f"{moment:%Y-%m-%d %H:%M}"


def _looked_for(source: Source, period: Period, data_root: Path | None, windows: list) -> str:
    """What the period was looked for in: the files' glob and dates, or the table or URL and
    the window read."""
    location = source.location
    if isinstance(location, FileLocation):
        where = f"{location.path} under {data_root}"
        if location.date == "delivered":
            return f"looked for {where} not landed before"
        if isinstance(location.date, ColumnDate):
            return f"looked for {where} whose latest {location.date.column} is in {period}"
        return f"looked for {where} dated in {period}"
    if location.kind == "sql":
        what = f"table {location.table}" if location.table else "the query"
        what += f" of connection {location.conn_id}"
    else:
        what = location.url
    if not windows:
        return f"{what}: no window ending in {period} was landed"
    start, end = windows[-1][:2]
    rows = "no new rows" if source.read.mode == "cursor" else "0 rows"
    return f"{what} gave {rows} in the window [{_at(start)}, {_at(end)})"


def nothing_new(
    settings: StoreSettings, contracts: Contracts, period: Period, data_root: Path | None,
    names: Collection[str],
) -> dict[str, str]:  # fmt: skip
    """The sources of `names` from which the period got nothing, now or in an earlier run, each
    with what was looked for: a file source no file whose window ends in the period, a cursor
    source no new row in such a window, a snapshot source 0 rows. A rerun of a period whose
    window was landed is not "nothing new"."""
    missing = {}
    in_period = "source = ? AND window_end > ? AND window_end <= ?"
    with open_store(settings) as con:
        for name in names:
            source = contracts.sources[name]
            params = [name, period.start, period.end]
            if isinstance(source.location, FileLocation):
                (files,) = con.execute(
                    f"SELECT count(*) FROM meta.files WHERE {in_period}", params
                ).fetchone()
                if files:
                    continue
                windows = []
            else:
                windows = con.execute(
                    "SELECT window_start, window_end, rows_read, rows_unchanged FROM meta.accounting "
                    f"WHERE stage = '{STAGE}' AND {in_period} ORDER BY window_end, recorded_at",
                    params,
                ).fetchall()
                new = [read - (unchanged if source.read.mode == "cursor" else 0)
                       for _, _, read, unchanged in windows]  # fmt: skip
                if any(new):
                    continue
            missing[name] = (
                f"source {name}: nothing new for {period}: "
                f"{_looked_for(source, period, data_root, windows)}"
            )
    return missing
