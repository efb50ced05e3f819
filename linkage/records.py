"""`onetable link-records`: the pipeline's standardizers and matching on a plain table of records,
for ad-hoc use and for benchmarks. Input columns: record_id, source, name, sex, birth_date,
id_number, phone, address (raw strings as departments give them; any may be empty)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from onetable.linkage import standardize as st
from onetable.linkage.link import assign_ids

COLUMNS = ("record_id", "source", "name", "sex", "birth_date", "id_number", "phone", "address")


def _standardized(values: pd.Series, convert) -> tuple[pd.Series, pd.Series]:
    results = {v: convert(v) for v in pd.unique(values)}  # distinct values only
    return values.map(lambda v: results[v][0]), values.map(lambda v: list(results[v][1]))


def link_records(frame: pd.DataFrame) -> pd.DataFrame:
    """Person ids for the records of `frame` (COLUMNS); returns record_id, person_id."""
    missing = [c for c in ("record_id", "source") if c not in frame.columns]
    if missing:
        raise ValueError(f"link-records: the input has no column(s) {missing}; map them with --map")
    raw = frame.reindex(columns=list(COLUMNS)).astype(object)
    raw = raw.where(raw.notna(), None)
    id_number, id_flags = _standardized(raw["id_number"], st.id_number)
    name, _ = _standardized(raw["name"], st.name)
    born, _ = _standardized(raw["birth_date"], st.parse_date)
    records = pd.DataFrame({
        "_source": raw["source"].astype(str),
        "_record_key": raw["record_id"].astype(str),
        "id_number": id_number,
        "name": name,
        "birth_date": born,
        "_flags": id_flags.map(lambda flags: [f"id_number:{f}" for f in flags]),
    })  # fmt: skip
    if records["_record_key"].duplicated().any():
        raise ValueError("link-records: record_id must be unique")
    registry = pd.DataFrame(columns=["source", "record_key", "person_id"])
    linked, _ = assign_ids(
        records.sort_values(["_source", "_record_key"], ignore_index=True), registry, 1
    )
    return linked[["_record_key", "person_id"]].rename(columns={"_record_key": "record_id"})


def read_table(path: Path, mapping: dict[str, str]) -> pd.DataFrame:
    """A CSV (UTF-8 or GB18030) or Parquet file as text, its columns renamed by `mapping`
    (canonical name -> the file's column)."""
    if path.suffix.lower() == ".parquet":
        frame = pd.read_parquet(path).astype(str).where(lambda f: f != "None")
    else:
        from onetable.connectors.files import detect_encoding

        frame = pd.read_csv(path, dtype=str, encoding=detect_encoding(path), keep_default_na=False)
    return frame.rename(columns={v: k for k, v in mapping.items()})


def write_table(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix.lower() == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
