"""What the store writes about its data, in the same transaction as the data it describes.

Watermarks (committed windows), lineage, row accounting, quarantine and the audit chain live in the
store beside the data, so a process killed at any point leaves all of them consistent with the last
good snapshot (docs/architecture.md, "Storage"). Every commit made through `transaction` names
its run and stage in the DuckLake snapshot itself, which is the run→snapshot map.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

if TYPE_CHECKING:  # pandas is heavy, and DAG files import the store through onetable.pipeline
    import pandas as pd

SCHEMAS = ("landing", "quarantine", "staging", "core", "marts", "quality", "audit", "meta")

_TABLES = {
    "meta.windows": """
        source VARCHAR NOT NULL, window_start TIMESTAMP, window_end TIMESTAMP NOT NULL,
        version INTEGER NOT NULL, run_id VARCHAR NOT NULL, committed_at TIMESTAMP NOT NULL""",
    "meta.lineage": """
        run_id VARCHAR NOT NULL, stage VARCHAR NOT NULL, source VARCHAR NOT NULL,
        window_start TIMESTAMP, window_end TIMESTAMP NOT NULL, version INTEGER NOT NULL,
        recorded_at TIMESTAMP NOT NULL""",
    "meta.accounting": """
        run_id VARCHAR NOT NULL, stage VARCHAR NOT NULL, source VARCHAR NOT NULL,
        window_start TIMESTAMP, window_end TIMESTAMP, rows_read BIGINT NOT NULL,
        rows_kept BIGINT NOT NULL, rows_quarantined BIGINT NOT NULL,
        rows_unchanged BIGINT NOT NULL, recorded_at TIMESTAMP NOT NULL""",
    "meta.files": """
        source VARCHAR NOT NULL, path VARCHAR NOT NULL, sha256 VARCHAR NOT NULL, size BIGINT NOT NULL,
        window_end TIMESTAMP NOT NULL, version INTEGER NOT NULL, run_id VARCHAR NOT NULL,
        landed_at TIMESTAMP NOT NULL""",
    "quarantine.rows": """
        run_id VARCHAR NOT NULL, stage VARCHAR NOT NULL, source VARCHAR NOT NULL,
        window_start TIMESTAMP, window_end TIMESTAMP, location VARCHAR, sheet VARCHAR,
        row_number BIGINT, field VARCHAR, rule_id VARCHAR NOT NULL, reason VARCHAR NOT NULL,
        raw VARCHAR, recorded_at TIMESTAMP NOT NULL""",
    "audit.log": """
        seq BIGINT NOT NULL, logged_at TIMESTAMP NOT NULL, actor VARCHAR NOT NULL, action VARCHAR NOT NULL,
        subject VARCHAR NOT NULL, run_id VARCHAR, detail VARCHAR NOT NULL,
        prev_hash VARCHAR NOT NULL, hash VARCHAR NOT NULL""",
}
_GENESIS = "0" * 64


class AccountingError(ValueError):
    """Rows read do not equal rows kept plus quarantined plus unchanged, each counted by its own
    means: a row would be lost silently. A defect of onetable, not of the data: the run stops."""


def ensure_layout(con: duckdb.DuckDBPyConnection) -> None:
    """Create the schemas and bookkeeping tables once; a no-op (and no snapshot) afterwards."""
    have = {
        f"{s}.{t}"
        for s, t in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
    }
    if all(name in have for name in _TABLES):
        return
    with _plain_transaction(con):
        for schema in SCHEMAS:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for name, columns in _TABLES.items():
            con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns})")
        _name_commit(con, run_id="init", stage="init", actor=current_actor())


def tables(con: duckdb.DuckDBPyConnection, schema: str) -> set[str]:
    """The tables of one schema of the store."""
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = ?",
        [schema],
    ).fetchall()
    return {r[0] for r in rows}


def insert_arrow(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table) -> int:
    """Insert an Arrow table into a store table by column name; returns the rows inserted."""
    # found by this variable's name (a replacement scan): a registered view would keep the data
    # alive until the transaction commits
    _onetable_rows = data
    cols = ", ".join(f'"{c}"' for c in data.column_names)
    (inserted,) = con.execute(
        f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _onetable_rows"
    ).fetchone()
    return inserted


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> int:
    """Insert a pandas frame into a store table by column name; returns the rows inserted."""
    if not len(frame):
        return 0
    return insert_arrow(con, table, pa.Table.from_pandas(frame, preserve_index=False))


def current_actor() -> str:
    """The OS user, or the Airflow task's identity when running under Airflow."""
    dag, task = os.environ.get("AIRFLOW_CTX_DAG_ID"), os.environ.get("AIRFLOW_CTX_TASK_ID")
    if dag and task:
        return f"airflow:{dag}.{task}"
    try:
        return getpass.getuser()
    except OSError:
        return f"uid:{os.getuid()}"


def _db(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute("SELECT current_database()").fetchone()[0]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@contextlib.contextmanager
def _plain_transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _name_commit(con: duckdb.DuckDBPyConnection, *, run_id: str, stage: str, actor: str) -> None:
    con.execute(
        f"CALL {_db(con)}.set_commit_message(?, ?, extra_info => ?)",
        [actor, f"{stage} {run_id}", json.dumps({"run_id": run_id, "stage": stage})],
    )


@dataclass(frozen=True)
class QuarantineRecord:
    """One rejected row or value: where it came from, which rule it broke, and its raw text.

    `row_number` is the physical line where the record starts (1-based) for text files, the row
    within `sheet` for XLSX, and the source's own row order for tables and APIs.
    """

    source: str
    rule_id: str
    reason: str
    raw: str | None
    location: str | None = None
    row_number: int | None = None
    field: str | None = None
    sheet: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None


class Transaction:
    """One store transaction: data plus the bookkeeping that describes it, committed together."""

    def __init__(self, con: duckdb.DuckDBPyConnection, run_id: str, stage: str, actor: str):
        self.con = con
        self.run_id = run_id
        self.stage = stage
        self.actor = actor

    def commit_window(
        self, source: str, window_start: datetime | None, window_end: datetime
    ) -> int:
        """Record a landed window; its end becomes the source's watermark. Returns its version
        (1 the first time, one more for each forced re-extraction of the same window)."""
        (version,) = self.con.execute(
            "SELECT coalesce(max(version), 0) + 1 FROM meta.windows WHERE source = ? "
            "AND window_start IS NOT DISTINCT FROM ? AND window_end = ?",
            [source, window_start, window_end],
        ).fetchone()
        self.con.execute(
            "INSERT INTO meta.windows VALUES (?, ?, ?, ?, ?, ?)",
            [source, window_start, window_end, version, self.run_id, _now()],
        )
        return version

    def record_file(self, source: str, path: str, sha256: str, size: int, window_end: datetime,
                    version: int) -> None:  # fmt: skip
        """Record a landed file by checksum, so the same file dropped again is not landed twice."""
        self.con.execute(
            "INSERT INTO meta.files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [source, path, sha256, size, window_end, version, self.run_id, _now()],
        )

    def record_lineage(
        self, source: str, window_start: datetime | None, window_end: datetime, version: int
    ) -> None:
        """Record that this run consumed one version of one landed window."""
        self.con.execute(
            "INSERT INTO meta.lineage VALUES (?, ?, ?, ?, ?, ?, ?)",
            [self.run_id, self.stage, source, window_start, window_end, version, _now()],
        )

    def account(
        self,
        source: str,
        *,
        read: int,
        kept: int,
        quarantined: int,
        unchanged: int = 0,
        window_start: datetime | None = None,
        window_end: datetime | None = None,
    ) -> None:
        """Record row counts; refuses counts that would lose a row. `unchanged` counts rows read
        again that are already in the store as they are (an overlap, an unchanged snapshot row).
        The caller counts each term by its own means (rows inserted, rows found already stored,
        rows written to quarantine), never one as the remainder of the others."""
        if read != kept + quarantined + unchanged:
            where = (
                "" if window_end is None else f", window {_window_text(window_start, window_end)}"
            )
            raise AccountingError(
                f"{self.stage} of source {source!r}{where}: {read} rows read but {kept} kept + "
                f"{quarantined} quarantined + {unchanged} unchanged = "
                f"{kept + quarantined + unchanged}; nothing of it was committed"
            )
        self.con.execute(
            "INSERT INTO meta.accounting VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                self.run_id,
                self.stage,
                source,
                window_start,
                window_end,
                read,
                kept,
                quarantined,
                unchanged,
                _now(),
            ],
        )

    def quarantine(self, records: Iterable[QuarantineRecord]) -> int:
        """Store rejected rows with their reasons and raw text; returns how many."""
        rows = [asdict(r) for r in records]
        if not rows:
            return 0
        now = _now()
        table = pa.Table.from_pylist(
            [{"run_id": self.run_id, "stage": self.stage, **r, "recorded_at": now} for r in rows],
            schema=_QUARANTINE_ARROW,
        )
        return insert_arrow(self.con, "quarantine.rows", table)

    def audit(self, action: str, subject: str, detail: dict) -> tuple[int, str]:
        """Append to the hash-chained audit log; returns the new head (sequence, hash)."""
        last = self.con.execute(
            "SELECT seq, hash FROM audit.log ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, _GENESIS)
        at = _now()
        body = json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)
        digest = audit_hash(prev_hash, seq, at, self.actor, action, subject, self.run_id, body)
        self.con.execute(
            "INSERT INTO audit.log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [seq, at, self.actor, action, subject, self.run_id, body, prev_hash, digest],
        )
        return seq, digest


_QUARANTINE_ARROW = pa.schema(
    [
        ("run_id", pa.string()),
        ("stage", pa.string()),
        ("source", pa.string()),
        ("window_start", pa.timestamp("us")),
        ("window_end", pa.timestamp("us")),
        ("location", pa.string()),
        ("sheet", pa.string()),
        ("row_number", pa.int64()),
        ("field", pa.string()),
        ("rule_id", pa.string()),
        ("reason", pa.string()),
        ("raw", pa.string()),
        ("recorded_at", pa.timestamp("us")),
    ]
)


def _window_text(start: datetime | None, end: datetime) -> str:
    return f"[{'the start' if start is None else f'{start:%Y-%m-%d %H:%M}'}, {end:%Y-%m-%d %H:%M})"


def audit_hash(
    prev_hash: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    run_id: str | None,
    detail: str,
) -> str:
    """SHA-256 over the previous hash and the row's fields, so a rewritten row breaks the chain."""
    text = "\x1f".join(
        [prev_hash, str(seq), at.isoformat(), actor, action, subject, run_id or "", detail]
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def verify_audit_chain(con: duckdb.DuckDBPyConnection) -> tuple[int, str]:
    """Recompute the chain; returns its head, or raises naming the first broken row."""
    prev, seq = _GENESIS, 0
    rows = con.execute(
        "SELECT seq, logged_at, actor, action, subject, run_id, detail, prev_hash, hash FROM audit.log "
        "ORDER BY seq"
    ).fetchall()
    for row_seq, at, actor, action, subject, run_id, detail, prev_hash, digest in rows:
        if row_seq != seq + 1 or prev_hash != prev:
            raise ValueError(f"audit log broken at sequence {row_seq}: a row is missing before it")
        if audit_hash(prev, row_seq, at, actor, action, subject, run_id, detail) != digest:
            raise ValueError(f"audit log broken at sequence {row_seq}: the row was changed")
        prev, seq = digest, row_seq
    return seq, prev


@contextlib.contextmanager
def transaction(
    con: duckdb.DuckDBPyConnection, *, run_id: str, stage: str, actor: str | None = None
) -> Iterator[Transaction]:
    """Run data writes and their bookkeeping as one commit, named after the run and stage."""
    tx = Transaction(con, run_id, stage, actor or current_actor())
    with _plain_transaction(con):
        yield tx
        _name_commit(con, run_id=run_id, stage=stage, actor=tx.actor)


def watermark(
    con: duckdb.DuckDBPyConnection, source: str, by: datetime | None = None
) -> datetime | None:
    """The end of the source's last committed window (of those ending by `by`, when given), or
    None before its first landing. A period's input is every window ending by its end, so a
    period reads on from the last window it can see, whatever later periods have landed."""
    (end,) = con.execute(
        "SELECT max(window_end) FROM meta.windows WHERE source = ? "
        "AND (?::TIMESTAMP IS NULL OR window_end <= ?::TIMESTAMP)",
        [source, by, by],
    ).fetchone()
    return end


def current_snapshot(con: duckdb.DuckDBPyConnection) -> int:
    (snap,) = con.execute(f"SELECT * FROM {_db(con)}.current_snapshot()").fetchone()
    return snap


def run_snapshots(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> list[dict]:
    """The run→snapshot map: every commit made by a run, oldest first."""
    rows = con.execute(
        f"SELECT snapshot_id, snapshot_time, commit_extra_info FROM {_db(con)}.snapshots() "
        "WHERE commit_extra_info IS NOT NULL ORDER BY snapshot_id"
    ).fetchall()
    out = []
    for snapshot_id, at, info in rows:
        meta = json.loads(info)
        if run_id is None or meta.get("run_id") == run_id:
            out.append({"snapshot": snapshot_id, "at": at, **meta})
    return out


def accounting_summary(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict]:
    """Per stage and source: rows read, kept and quarantined in one run."""
    rows = con.execute(
        "SELECT stage, source, sum(rows_read), sum(rows_kept), sum(rows_quarantined), "
        "sum(rows_unchanged) FROM meta.accounting WHERE run_id = ? GROUP BY stage, source "
        "ORDER BY stage, source",
        [run_id],
    ).fetchall()
    keys = ("stage", "source", "read", "kept", "quarantined", "unchanged")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def delete_orphans(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Remove data files the catalog does not know: what a killed writer left. Call it under the
    store's lock (`open_store` holds it), so no writer is in flight. Returns what was removed."""
    return [
        r[0]
        for r in con.execute(
            "CALL ducklake_delete_orphaned_files(?, cleanup_all => true)", [_db(con)]
        ).fetchall()
    ]


def cleanup(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Remove data files the catalog does not know (left by a killed writer) and files of expired
    snapshots. Call it under the store's lock (`open_store` holds it). Returns what was removed."""
    removed = delete_orphans(con)
    removed += [
        r[0]
        for r in con.execute(
            "CALL ducklake_cleanup_old_files(?, cleanup_all => true)", [_db(con)]
        ).fetchall()
    ]
    return removed


def catalog_files(con: duckdb.DuckDBPyConnection) -> set[Path]:
    """Every data and delete file the catalog references, in any snapshot, as absolute paths.

    Read from the DuckLake 1.0 metadata tables (a public spec): a relative file path hangs below its
    table's path, below its schema's path, below the data path this connection attached with (the
    catalog's own record is where the store was made, elsewhere for a restored copy).
    """
    db = _db(con)
    meta = f"__ducklake_metadata_{db}"
    (root,) = con.execute("SELECT data_path FROM ducklake_settings(?)", [db]).fetchone()
    files = set()
    for kind in ("ducklake_data_file", "ducklake_delete_file"):
        rows = con.execute(
            f"SELECT s.path, s.path_is_relative, t.path, t.path_is_relative, f.path, f.path_is_relative "
            f"FROM {meta}.{kind} f JOIN {meta}.ducklake_table t USING (table_id) "
            f"JOIN {meta}.ducklake_schema s USING (schema_id)"
        ).fetchall()
        for s_path, s_rel, t_path, t_rel, f_path, f_rel in rows:
            base = Path(root) / s_path if s_rel else Path(s_path)
            base = base / t_path if t_rel else Path(t_path)
            files.add((base / f_path if f_rel else Path(f_path)).resolve())
    return files
