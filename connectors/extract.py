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
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from onetable.connectors import connections
from onetable.connectors.files import read_csv, read_json, read_jsonl, read_xlsx
from onetable.connectors.http import read_http
from onetable.connectors.landing import Manifest, Window, land_window
from onetable.connectors.reading import Chunk, ConnectorError
from onetable.connectors.sql import read_sql
from onetable.schemas.contracts import Contracts, FileLocation, Source
from onetable.warehouse.ledger import AccountingError, transaction, watermark
from onetable.warehouse.masking import scrub
from onetable.warehouse.store import StoreSettings, open_store

STAGE = "extract"
_NAME_DATE = re.compile(r"(20\d\d|19\d\d)-?(0[1-9]|1[0-2])-?(0[1-9]|[12]\d|3[01])")


@dataclass
class Outcome:
    """One source's result in a run: the windows it landed, or why it failed or had nothing new."""

    source: str
    manifests: list[Manifest] = field(default_factory=list)
    error: str | None = None
    note: str | None = None


def _expected(source: Source) -> list[str]:
    """Source columns a header must show: the required ones, else every mapped one."""
    return list(source.required) or list(source.columns) + source.record_key.source_columns()


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


def _file_day(path: Path) -> date:
    """The date a file stands for: the date in its name, else its modification day."""
    match = _NAME_DATE.search(path.name)
    if match:
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            pass
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).date()


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
    return read_json(path, source=source.source, records_key=location.records)


def _extract_files(
    settings: StoreSettings, source: Source, mapping_file: Path, *, end: datetime, run_id: str,
    data_root: Path, force: bool, accept_shrink: bool,
) -> Outcome:  # fmt: skip
    """Each new file (by checksum) whose day ends by `end` is its own window, in day order; a
    file held (SnapshotShrinkError) stops the source there, so no later file is diffed past it."""
    location: FileLocation = source.location  # type: ignore[assignment]
    outcome = Outcome(source.source)
    due = sorted(
        (
            (datetime.combine(_file_day(p) + timedelta(days=1), datetime.min.time()), p)
            for p in data_root.glob(location.path)
            if p.is_file()
        ),
        key=lambda item: (item[0], item[1].name),
    )
    due = [(window_end, path) for window_end, path in due if window_end <= end]
    with ThreadPoolExecutor(max_workers=1) as pool:
        digests = pool.map(_sha256, [path for _, path in due])  # read while the store opens
        with open_store(settings) as con:
            # the same bytes for the same day were landed already; the same bytes for a
            # later day are a new snapshot in which nothing changed
            landed = {
                (digest, end) for digest, end in con.execute(
                    "SELECT sha256, window_end FROM meta.files WHERE source = ?", [source.source]).fetchall()
            }  # fmt: skip
            todo = [
                (window_end, path, digest)
                for (window_end, path), digest in zip(due, digests, strict=True)
                if (digest, window_end) not in landed or (force and window_end == end)
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
