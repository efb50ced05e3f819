"""Find personal values in files at rest where none may be (docs/architecture.md,
"Nothing personal outside the store").

Greps every file under the given roots for known ID numbers and phones, looking through the
encodings a plain grep would miss: values inside unencrypted Parquet and DuckDB files (which
compress strings) and inside ZIP (XLSX) and gzip containers. Files in allowed places (a
department's own files, a drop folder, a sharing entry's folder) are passed over. Findings carry
masked values only, so the report itself is safe to print.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from onetable.warehouse.masking import Kind, mask


@dataclass(frozen=True)
class Finding:
    path: Path
    where: str  # "bytes", "parquet values", "duckdb values", "zip member x", "gzip"
    value: str  # masked


def scan_personal_data(
    roots: Iterable[Path], needles: dict[str, Kind], allowed: Iterable[Path] = ()
) -> list[Finding]:
    """Every place under `roots`, outside `allowed`, where one of `needles` (value -> kind)
    appears."""
    allowed = [Path(p).resolve() for p in allowed]
    encoded = {v.encode("utf-8"): (v, k) for v, k in needles.items() if v}
    findings = []
    for root in roots:
        root = Path(root)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            real = path.resolve()
            if any(real.is_relative_to(a) for a in allowed):
                continue
            left = dict(encoded)  # each value reported once per file, in the first view showing it
            for where, blob in _views(real):
                for needle in [n for n in left if n in blob]:
                    value, kind = left.pop(needle)
                    findings.append(Finding(path, where, mask(value, kind)))
                if not left:
                    break
    return findings


def _views(path: Path) -> Iterable[tuple[str, bytes]]:
    """The file's raw bytes, plus decoded views of containers and columnar files."""
    try:
        data = path.read_bytes()
    except OSError:
        return
    yield "bytes", data
    if data[:4] == b"PAR1" and data[-4:] == b"PAR1":  # plain Parquet; "PARE" is encrypted
        text = _parquet_text(data)
        if text is not None:
            yield "parquet values", text
    elif data[8:12] == b"DUCK":
        text = _duckdb_text(path)
        if text is not None:
            yield "duckdb values", text
    elif data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for name in zf.namelist():
                    yield f"zip member {name}", zf.read(name)
        except zipfile.BadZipFile:
            pass
    elif data[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError, EOFError):
            yield "gzip", gzip.decompress(data)


def _parquet_text(data: bytes) -> bytes | None:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception:  # unreadable without a key, or not Parquet after all
        return None
    return "\n".join(str(v) for col in table.columns for v in col.to_pylist()).encode("utf-8")


def _duckdb_text(path: Path) -> bytes | None:
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:  # encrypted, locked, or another version
        return None
    try:
        parts = []
        for db, schema, table in con.execute(
            "SELECT database_name, schema_name, table_name FROM duckdb_tables()"
        ).fetchall():
            rows = con.execute(f'SELECT * FROM "{db}"."{schema}"."{table}"').fetchall()
            parts.extend(str(v) for row in rows for v in row)
        return "\n".join(parts).encode("utf-8")
    finally:
        con.close()
