"""Sharing extracts: what one sharing-list entry allows of a published dataset, masked, in a file
with a manifest, logged in the audit chain (docs/architecture.md, "Sharing and audit";
docs/sharing.md).

`export_entry` reads `marts.<dataset>` at the published snapshot for one period, keeps the rows in
the entry's scope that meet its filters and only its listed columns (a column it drops is never
read), masks them by the entry's plan (`onetable.schemas.sharing.plan_columns`), and stages it in
`<out_root>/.staging/`, never in a consumer's folder. `settle_extracts` then delivers

    <out_root>/<consumer>/<entry>/<period>/data.<format>      the extract
    <out_root>/<consumer>/<entry>/<period>/manifest.json      what it is, with the audit head
    <out_root>/audit_anchor.log                                one line per extract: seq, hash, time

The audit row (counts and checksum only) is appended in the caller's transaction; only once it has
committed are the files moved into place and its head appended to the anchor file outside the
store, so that a deleted last audit row shows (`verify_anchor`) and every anchored head is one the
chain once held. A share killed at any point leaves only the staging folder, which the next share
or `onetable store cleanup` settles: delivered if its audit row committed, removed if not.

A dataset of the marts has a `period` column (YYYY-MM) and the canonical columns of its entity.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from onetable.schemas.contracts import Contracts
from onetable.schemas.sharing import (
    ColumnPlan,
    RowFilter,
    SharingEntry,
    dataset_level,
    period_end,
    plan_columns,
)
from onetable.warehouse.ledger import Transaction, run_snapshots, transaction, verify_audit_chain
from onetable.warehouse.masking import mask
from onetable.warehouse.store import StoreKeyError, StoreSettings, open_store

PERIOD_COLUMN = "period"
ANCHOR_FILE = "audit_anchor.log"
MANIFEST_FILE = "manifest.json"
# Extracts wait here, beside the consumers' folders (a consumer id starts with a letter), until
# their audit row has committed.
STAGING_DIR = ".staging"
PSEUDONYM_KEY_ENV = "ONETABLE_PSEUDONYM_KEY"
PSEUDONYM_ALGORITHM = "HMAC-SHA256, hex, over the value trimmed and upper-cased"
_MIN_KEY_BYTES = 32
_MASK_KINDS = {"id_number", "phone", "name", "address"}

log = logging.getLogger(__name__)


class SharingError(Exception):
    """An extract cannot be made as its entry asks (the dataset or a column is missing, the entry
    is 不予共享, the key is too short). Messages name the entry, never a value."""


class PseudonymKeyError(SharingError, StoreKeyError):
    """ONETABLE_PSEUDONYM_KEY is missing where a due entry needs it, too short, or the store key.
    A key error like StoreKeyError, so the CLI reports it (exit 2); it never shows a key."""


@dataclass(frozen=True)
class ExtractManifest:
    """One extract: where it is delivered (once `settle_extracts` finds its audit row committed),
    how many rows, its checksum and the audit head."""

    entry_id: str
    consumer: str
    period: str
    path: Path
    manifest_path: Path
    rows: int
    sha256: str
    format: str
    audit_seq: int
    audit_hash: str
    level: str
    document: dict[str, Any] = field(repr=False)
    why_empty: str | None = None  # with 0 rows: why, in counts only (`_why_empty`)


def pseudonym(value: str, key: bytes) -> str:
    """The keyed pseudonym of an identifier (docs/domain.md, "Masking"): HMAC-SHA256 over the
    value trimmed and upper-cased (the X of an ID number), as hex. Never a bare hash: the ID
    space is small."""
    return hmac.new(key, value.strip().upper().encode("utf-8"), hashlib.sha256).hexdigest()


def key_id(key: bytes) -> str:
    """A short public fingerprint of a pseudonym key, so consumers can tell whether the pseudonyms
    of two extracts are comparable; it reveals nothing of the key."""
    return hmac.new(key, b"onetable pseudonym key id", hashlib.sha256).hexdigest()[:16]


# --- reading ----------------------------------------------------------------------------------


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year - years, day=28)


def _condition_sql(condition: RowFilter, reference: date) -> tuple[str, list[Any]]:
    col = f'"{condition.column}"'
    if condition.in_ is not None:
        return f"{col} IN ({', '.join('?' * len(condition.in_))})", list(condition.in_)
    if condition.not_in is not None:
        return f"{col} NOT IN ({', '.join('?' * len(condition.not_in))})", list(condition.not_in)
    if condition.not_null:
        return f"{col} IS NOT NULL", []
    parts, params = [], []
    if condition.min is not None:
        parts.append(f"{col} >= ?")
        params.append(condition.min)
    if condition.max is not None:
        parts.append(f"{col} <= ?")
        params.append(condition.max)
    if condition.age_min is not None:  # born on or before the day they turned age_min
        parts.append(f"{col} <= ?")
        params.append(_years_before(reference, condition.age_min))
    if condition.age_max is not None:  # not yet age_max + 1
        parts.append(f"{col} > ?")
        params.append(_years_before(reference, condition.age_max + 1))
    return " AND ".join(parts), params


def _names(columns: list[str]) -> str:
    # Column names come from the contracts (lower_snake_case ASCII), quoted all the same.
    return ", ".join(f'"{c}"' for c in columns)


def _select(
    con: duckdb.DuckDBPyConnection,
    entry: SharingEntry,
    plans: list[ColumnPlan],
    key: list[str],
    *,
    period: str,
    snapshot: int,
) -> pa.Table:
    table = f"marts.{entry.dataset}"
    source = f"{table} AT (VERSION => {int(snapshot)})"
    try:
        have = [d[0] for d in con.execute(f"SELECT * FROM {source} LIMIT 0").description]
    except duckdb.Error:
        raise SharingError(
            f"sharing entry {entry.id}: dataset {table} does not exist at snapshot {snapshot}"
        ) from None
    shared = [p.name for p in plans if p.mask != "drop"]
    needed = [PERIOD_COLUMN, *shared, *(c.column for c in entry.filters)]
    if entry.row_scope != "all":
        needed.append(entry.scope_column)
    missing = sorted({c for c in needed if c not in have})
    if missing:
        raise SharingError(
            f"sharing entry {entry.id}: {table} at snapshot {snapshot} has no column(s) "
            f"{', '.join(missing)}"
        )
    where, params = [f'"{PERIOD_COLUMN}" = ?'], [period]
    if entry.row_scope != "all":
        where.append(_scope_sql(entry))
        params += list(entry.row_scope)
    reference = period_end(period)
    for condition in entry.filters:
        sql, values = _condition_sql(condition, reference)
        where.append(f"({sql})")
        params += values
    order = [c for c in key if c in have] or shared
    sql = (
        f"SELECT {_names(shared)} FROM {source} "
        f"WHERE {' AND '.join(where)} ORDER BY {_names(order)}"
    )
    return con.execute(sql, params).to_arrow_table()


def _scope_sql(entry: SharingEntry) -> str:
    """The entry's row scope as a condition; its parameters are the scope's prefixes."""
    return (
        "(" + " OR ".join(f'starts_with("{entry.scope_column}", ?)' for _ in entry.row_scope) + ")"
    )


def _described(condition: RowFilter) -> str:
    written = condition.describe()
    column = written.pop("column")
    return f"{column} " + ", ".join(f"{key} {value}" for key, value in written.items())


def _why_empty(
    con: duckdb.DuckDBPyConnection, entry: SharingEntry, *, period: str, snapshot: int
) -> str:
    """Why an entry's extract has no rows, in counts only: the dataset's rows for the period, how
    many of them the row scope keeps (none: it matches none of the period's villages), and how
    many pass each filter."""
    source = f"marts.{entry.dataset} AT (VERSION => {int(snapshot)})"
    in_period, params = f'"{PERIOD_COLUMN}" = ?', [period]
    (held,) = con.execute(f"SELECT count(*) FROM {source} WHERE {in_period}", params).fetchone()
    if not held:
        return f"marts.{entry.dataset} holds no rows for {period}"
    kept = f"of the period's {held} rows"
    if entry.row_scope != "all":
        scope = _scope_sql(entry)
        in_scope, places = con.execute(
            f'SELECT count(*) FILTER (WHERE {scope}), count(DISTINCT "{entry.scope_column}") '
            f"FROM {source} WHERE {in_period}",
            [*entry.row_scope, period],
        ).fetchone()
        label = (
            "villages" if entry.scope_column == "village_code" else f"{entry.scope_column} values"
        )
        if not in_scope:
            return f"row_scope {entry.row_scope} matches none of the period's {places} {label}"
        in_period, params = f"{in_period} AND {scope}", [period, *entry.row_scope]
        kept = f"{in_scope} of the period's {held} rows are in row_scope {entry.row_scope}; of them"
    reference = period_end(period)
    passing = []
    for condition in entry.filters:
        sql, values = _condition_sql(condition, reference)
        (n,) = con.execute(
            f"SELECT count(*) FROM {source} WHERE {in_period} AND ({sql})", [*params, *values]
        ).fetchone()
        passing.append(f"{n} pass {_described(condition)}")
    return f"{kept}, {', '.join(passing)}, none passes every filter"


def _pseudonymises(plans: Iterable[ColumnPlan]) -> bool:
    return any(p.mask == "pseudonym" for p in plans)


def _due(entries: Mapping[str, SharingEntry], period: str) -> list[SharingEntry]:
    return [e for e in entries.values() if e.sharing_type != "不予共享" and e.due(period)]


# --- masking ----------------------------------------------------------------------------------


def _masked(values: pa.ChunkedArray, plan: ColumnPlan, key: bytes | None) -> pa.Array:
    items = values.to_pylist()
    if plan.mask == "pseudonym":
        assert key is not None
        return pa.array([None if v is None else pseudonym(str(v), key) for v in items], pa.string())
    if plan.mask == "partial":
        kind = plan.personal if plan.personal in _MASK_KINDS else "other"
        return pa.array([None if v is None else mask(str(v), kind) for v in items], pa.string())
    if plan.mask == "generalize":
        months = [None if v is None else f"{v.year:04d}-{v.month:02d}" for v in items]
        return pa.array(months, pa.string())
    raise AssertionError(plan.mask)


def _apply(table: pa.Table, plans: list[ColumnPlan], key: bytes | None) -> pa.Table:
    columns, names = [], []
    for plan in plans:
        if plan.mask == "drop":
            continue
        values = table.column(plan.name)
        columns.append(values if plan.mask == "none" else _masked(values, plan, key))
        names.append(plan.name)
    return pa.table(columns, names=names)


# --- writing ----------------------------------------------------------------------------------


def _write(table: pa.Table, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pq.write_table(table, path, compression="zstd")
    elif fmt == "csv":
        # UTF-8 with a BOM, so that Excel on a government desktop shows the Chinese right.
        with open(path, "w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(table.column_names)
            for batch in table.to_batches(max_chunksize=10_000):
                cols = [c.to_pylist() for c in batch.columns]
                writer.writerows(
                    ["" if v is None else v.isoformat() if isinstance(v, date) else v for v in row]
                    for row in zip(*cols, strict=True)
                )
    elif fmt == "xlsx":
        from openpyxl import Workbook

        # openpyxl streams the sheet through a temporary file of the system's temp folder, which a
        # kill leaves behind with the rows: it goes beside the staged file instead.
        saved, tempfile.tempdir = tempfile.tempdir, str(path.parent)
        try:
            book = Workbook(write_only=True)
            sheet = book.create_sheet("data")
            sheet.append(table.column_names)
            for batch in table.to_batches(max_chunksize=10_000):
                cols = [c.to_pylist() for c in batch.columns]
                for row in zip(*cols, strict=True):
                    sheet.append(list(row))
            book.save(path)
        finally:
            tempfile.tempdir = saved
    else:  # the contract allows no other
        raise SharingError(f"unknown format {fmt!r}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _replace(tmp: Path, final: Path) -> None:
    _fsync(tmp)
    os.replace(tmp, final)
    try:  # make the rename itself durable
        fd = os.open(final.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _append_anchor(out_root: Path, seq: int, digest: str, at: str, subject: str) -> Path:
    anchor = out_root / ANCHOR_FILE
    with open(anchor, "a", encoding="utf-8") as f:
        f.write(f"{seq}\t{digest}\t{at}\t{subject}\n")
        f.flush()
        os.fsync(f.fileno())
    return anchor


def export_entry(
    con: duckdb.DuckDBPyConnection,
    tx: Transaction,
    entry: SharingEntry,
    contracts: Contracts,
    *,
    period: str,
    run_id: str,
    snapshot: int,
    out_root: Path,
    pseudonym_key: bytes | None,
) -> ExtractManifest:
    """Stage the extract of one entry for one period from the published `snapshot`, inside the
    caller's transaction `tx` (whose commit records the audit row). `contracts` classify the
    columns (`load_contracts()`); `pseudonym_key` is the project's secret (at least 32 bytes).

    The data and the manifest go to the staging folder: call `settle_extracts` with the store
    still open once `tx` has ended, and it delivers them if the row committed (else removes them).
    """
    if not isinstance(contracts, Contracts):
        raise TypeError("export_entry needs the Contracts (load_contracts()), not a part of them")
    if entry.sharing_type == "不予共享":
        raise SharingError(f"sharing entry {entry.id} is 不予共享: nothing is extracted")
    period_end(period)  # validates YYYY-MM
    plans = plan_columns(entry, contracts)
    if _pseudonymises(plans) and len(pseudonym_key or b"") < _MIN_KEY_BYTES:
        raise SharingError(
            f"sharing entry {entry.id}: the pseudonym key must be at least {_MIN_KEY_BYTES} "
            "bytes of secret"
        )
    entity = contracts.entities[entry.entity]
    level = dataset_level(plans, contracts.classification)

    raw = _select(con, entry, plans, entity.key, period=period, snapshot=snapshot)
    table = _apply(raw, plans, pseudonym_key)
    del raw
    why_empty = None if table.num_rows else _why_empty(con, entry, period=period, snapshot=snapshot)

    out_root = Path(out_root).resolve()
    where = Path(entry.consumer.id, entry.id, period)
    final = out_root / where / f"data.{entry.format}"
    staged = out_root / STAGING_DIR / where
    staged.mkdir(parents=True, exist_ok=True)
    _write(table, staged / final.name, entry.format)
    _fsync(staged / final.name)
    checksum = _sha256(staged / final.name)
    shared = [p for p in plans if p.mask != "drop"]
    relative = final.relative_to(out_root).as_posix()
    seq, digest = tx.audit(
        "share",
        f"{entry.id}/{period}",
        {
            "entry": entry.id,
            "consumer": entry.consumer.id,
            "period": period,
            "snapshot": int(snapshot),
            "rows": table.num_rows,
            "sha256": checksum,
            "format": entry.format,
            "file": relative,
            "columns": {p.name: p.mask for p in plans},
            "level": level.id,
        },
    )

    created = datetime.now(UTC)
    document = {
        "entry": entry.id,
        "name_zh": entry.name_zh,
        "provider": entry.provider.model_dump(),
        "consumer": entry.consumer.model_dump(),
        "purpose": entry.purpose,
        "legal_basis": entry.legal_basis,
        "sharing_type": entry.sharing_type,
        "conditions": list(entry.conditions),
        "approval_ref": entry.approval_ref,
        "period": period,
        "reference_date": period_end(period).isoformat(),
        "run_id": run_id,
        "snapshot": int(snapshot),
        "dataset": f"marts.{entry.dataset}",
        "row_scope": entry.row_scope,
        "filters": [c.describe() for c in entry.filters],
        "rows": table.num_rows,
        "columns": [
            {
                "name": p.name,
                "name_zh": p.name_zh,
                "type": p.output_type,
                "level": p.level,
                "masking": p.mask,
                "level_after_masking": p.level_after,
            }
            for p in shared
        ],
        "dropped_columns": [p.name for p in plans if p.mask == "drop"],
        "classification": {
            "level": level.id,
            "name_zh": level.name_zh,
            "rule": "the highest level of the shared columns after masking (docs/sharing.md)",
        },
        "pseudonym": (
            {"algorithm": PSEUDONYM_ALGORITHM, "key_id": key_id(pseudonym_key)}
            if _pseudonymises(plans)
            else None
        ),
        "disclosure_control": entry.disclosure_control,
        "schedule": entry.schedule,
        "file": final.name,
        "format": entry.format,
        "sha256": checksum,
        "created_at": created.isoformat(timespec="seconds"),
        "retention_days": entry.retention_days,
        "delete_after": (created.date() + timedelta(days=entry.retention_days)).isoformat(),
        "audit": {"seq": seq, "hash": digest},
    }
    tmp = staged / f".{MANIFEST_FILE}.tmp"
    tmp.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    _replace(tmp, staged / MANIFEST_FILE)  # a staged manifest is always whole
    return ExtractManifest(
        entry_id=entry.id,
        consumer=entry.consumer.id,
        period=period,
        path=final,
        manifest_path=final.parent / MANIFEST_FILE,
        rows=table.num_rows,
        sha256=checksum,
        format=entry.format,
        audit_seq=seq,
        audit_hash=digest,
        level=level.id,
        document=document,
        why_empty=why_empty,
    )


def _deliver(out_root: Path, staged: Path, document: dict) -> None:
    # Each step can be repeated after a kill: data, anchor line, manifest (the mark of "not done").
    folder = out_root / document["consumer"]["id"] / document["entry"] / document["period"]
    folder.mkdir(parents=True, exist_ok=True)
    if (staged / document["file"]).exists():
        _replace(staged / document["file"], folder / document["file"])
    head = (document["audit"]["seq"], document["audit"]["hash"])
    subject = f"{document['entry']}/{document['period']}"
    if head not in read_anchor(out_root):
        _append_anchor(out_root, *head, document["created_at"], subject)
    _replace(staged / MANIFEST_FILE, folder / MANIFEST_FILE)
    log.info("shared %s: %d rows to %s (audit %d)", subject, document["rows"], folder, head[0])


def settle_extracts(con: duckdb.DuckDBPyConnection, out_root: Path) -> dict[str, list[str]]:
    """Finish what a share left in the staging folder, killed or not: an extract whose audit row
    committed is moved into its consumer's folder and anchored; anything else (a transaction that
    never committed, a file cut off mid-write, a library's temporary file) is removed. Call it
    with the store open, under its lock. Returns the subjects delivered, the staged folders
    removed."""
    out_root = Path(out_root).resolve()
    staging = out_root / STAGING_DIR
    if not staging.exists():
        return {"delivered": [], "removed": []}
    committed = dict(
        con.execute("SELECT seq, hash FROM audit.log WHERE action = 'share'").fetchall()
    )
    ready, removed = [], []
    for staged in sorted(p for p in staging.glob("*/*/*") if p.is_dir()):
        manifest = staged / MANIFEST_FILE
        document = json.loads(manifest.read_text(encoding="utf-8")) if manifest.exists() else None
        if document and committed.get(document["audit"]["seq"]) == document["audit"]["hash"]:
            ready.append((document["audit"]["seq"], staged, document))
        else:
            removed.append(staged.relative_to(staging).as_posix())
    for _, staged, document in sorted(ready, key=lambda r: r[0]):  # the anchor in chain order
        _deliver(out_root, staged, document)
    shutil.rmtree(staging)
    return {"delivered": [f"{d['entry']}/{d['period']}" for _, _, d in ready], "removed": removed}


def read_anchor(out_root: Path) -> list[tuple[int, str]]:
    """The (seq, hash) heads recorded in the anchor file, oldest first."""
    anchor = Path(out_root) / ANCHOR_FILE
    if not anchor.exists():
        return []
    heads = []
    for line in anchor.read_text(encoding="utf-8").splitlines():
        if line.strip():
            seq, digest = line.split("\t")[:2]
            heads.append((int(seq), digest))
    return heads


def verify_anchor(con: duckdb.DuckDBPyConnection, out_root: Path) -> tuple[int, str]:
    """Check the audit chain and that it still holds every head written to the anchor file, so a
    deleted last row (which leaves a shorter, still consistent chain) shows. Returns the head."""
    head = verify_audit_chain(con)
    rows = dict(con.execute("SELECT seq, hash FROM audit.log").fetchall())
    for seq, digest in read_anchor(out_root):
        if rows.get(seq) != digest:
            raise ValueError(
                f"audit log does not hold the head {seq} recorded in {ANCHOR_FILE}: "
                "an audit row was deleted or rewritten, or the store is a backup older than it"
            )
    return head


def check_pseudonym_key(
    contracts: Contracts,
    period: str,
    key: str | bytes | None,
    store_key: str,
    entries: Mapping[str, SharingEntry],
) -> bytes | None:
    """The pseudonym key (ONETABLE_PSEUDONYM_KEY) for a period's extracts, checked before anything
    is written: `onetable run` calls it before its first stage, the share stage before it opens the
    store. A key that is set must be at least 32 bytes and not the store key; a missing key is
    refused only when an entry due in `period` of the sharing list `entries` pseudonymises a
    column. Returns the key, or None when none is set and none is needed."""
    secret = key.encode() if isinstance(key, str) else key
    if not secret:
        users = [e.id for e in _due(entries, period) if _pseudonymises(plan_columns(e, contracts))]
        if users:
            raise PseudonymKeyError(
                f"{PSEUDONYM_KEY_ENV} is not set: sharing entry {', '.join(users)}, due for "
                f"{period}, pseudonymises with it (`onetable store new-key --pseudonym FILE` "
                "makes one)"
            )
        return None
    if len(secret) < _MIN_KEY_BYTES:
        raise PseudonymKeyError(
            f"{PSEUDONYM_KEY_ENV} must be at least {_MIN_KEY_BYTES} bytes of secret "
            "(`onetable store new-key --pseudonym FILE` makes one)"
        )
    if hmac.compare_digest(secret.strip(), store_key.strip().encode()):
        raise PseudonymKeyError(
            f"{PSEUDONYM_KEY_ENV} is the store key (ONETABLE_STORE_KEY): whoever may make or check "
            "pseudonyms would hold the key to the store; give it a key of its own"
        )
    return secret


def share(settings: StoreSettings, contracts: Contracts, entries: Mapping[str, SharingEntry],
          period: str, run_id: str, out_root: Path, pseudonym_key: str | bytes | None) -> dict:  # fmt: skip
    """The share stage: every entry of the deployment's sharing list (`entries`) due this period,
    extracted from the snapshot this run published, each logged in the audit chain, delivered once
    that has committed. It first settles what an earlier, killed share left. Returns each entry's
    file, rows and checksum, and for an empty extract (still written and audited: its consumer
    sees the empty file) why it is empty."""
    key = check_pseudonym_key(contracts, period, pseudonym_key, settings.key, entries)
    done = {}
    with open_store(settings) as con:
        settle_extracts(con, out_root)
        published = [r for r in run_snapshots(con, run_id) if r["stage"] == "publish"]
        if not published:
            raise SharingError(f"run {run_id} published nothing: there is nothing to share")
        snapshot = published[-1]["snapshot"]
        try:
            with transaction(con, run_id=run_id, stage="share") as tx:
                for entry in _due(entries, period):
                    manifest = export_entry(con, tx, entry, contracts, period=period, run_id=run_id,
                                            snapshot=snapshot, out_root=out_root, pseudonym_key=key)  # fmt: skip
                    done[entry.id] = {
                        "path": str(manifest.path),
                        "rows": manifest.rows,
                        "sha256": manifest.sha256,
                        "why_empty": manifest.why_empty,
                    }
        finally:  # delivered once committed, removed if rolled back
            settle_extracts(con, out_root)
    return done
