"""The person-linkage benchmark's data: a demo county, flattened to one table of person records.

`python bench/linkage_data.py --persons N --out DIR [--seed 1]` generates the county into
DIR/county (one month, the documented error rates) and writes, from the department systems as
they stand at the month end (read raw: SQLite tables, CSV/XLSX/JSON Lines files, the grid API's
JSON Lines), with the column mappings of onetable/demo/deployments/variant1/sources/*.yaml:

- DIR/records.parquet: record_id (`source:record_key`), source, name, sex, birth_date, id_number,
  phone, address (the text each system shows, null when empty), household (户号 or 家庭编号 where
  the system has one);
- DIR/truth.parquet: record_id, person_id (the true person; a unit's legal representative or a
  key place's 负责人 for market and grid_key_places);
- DIR/twins.parquet: person_id_a < person_id_b, true persons with the same mother and birth date.

Prints counts and seconds only: the data is personal-looking.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow.parquet as pq

from onetable.linkage.records import COLUMNS
from onetable.schemas.contracts import Source, load_contracts

MAPPINGS = Path(__file__).resolve().parents[1] / "onetable/demo/deployments/variant1/sources"
PERSON_FIELDS = ("name", "sex", "birth_date", "id_number", "phone")
HOUSEHOLD = {"household_registry": "户号", "civil_affairs": "家庭编号"}  # raw household keys


def person_columns(source: Source) -> dict[str, str]:
    """Canonical column -> the system's column, for the person fields and the address; empty
    when the source maps neither a person's name nor an ID number (no person records)."""
    out = {}
    for column in source.columns:
        for entity, field in source.targets(column):
            if entity == "person" and field in PERSON_FIELDS:
                out[field] = column
            elif entity == "address" and field == "standard_address":
                out["address"] = column
    if not {"name", "id_number"} & out.keys():
        return {}
    if source.source in HOUSEHOLD:
        out["household"] = HOUSEHOLD[source.source]
    return out


def _header_row(rows: list[list[object]], key: str) -> int:
    """Index of the header row (the first holding the record key): title rows sit above it."""
    return next(i for i, row in enumerate(rows) if key in row)


def read_system(source: Source, root: Path, month_end: date) -> pd.DataFrame:
    """The rows a system shows at `month_end`, all columns as text (the raw read)."""
    loc, key = source.location, source.record_key.column
    if loc.kind == "sql":  # the databases are the systems as of the last month end
        with sqlite3.connect(root / f"{source.source}.db") as con:
            return pd.read_sql_query(f'SELECT * FROM "{loc.table}"', con)
    if loc.kind == "http":  # every version on file: the latest at the month end
        frame = pd.read_json(root / "grid" / f"{loc.url.rsplit('/', 1)[1]}.jsonl", lines=True,
                             dtype=False, convert_dates=False)  # fmt: skip
        end = (month_end + timedelta(days=1)).isoformat()
        frame = frame[frame[source.read.cursor] < end].sort_values(source.read.cursor)
        return frame.drop_duplicates(key, keep="last")
    stamp = month_end.strftime("%Y%m%d")
    path = next(p for p in sorted(root.glob(loc.path)) if p.stem.endswith(stamp))
    if loc.format == "csv":
        with path.open(encoding=loc.encoding) as f:
            head = [line.rstrip("\n").split(",") for _, line in zip(range(20), f, strict=False)]
        return pd.read_csv(path, encoding=loc.encoding, skiprows=_header_row(head, key),
                           dtype=str, keep_default_na=False)  # fmt: skip
    if loc.format == "xlsx":
        sheet = openpyxl.load_workbook(path, read_only=True).active
        rows = [list(r) for r in sheet.iter_rows(values_only=True)]
        at = _header_row(rows, key)
        return pd.DataFrame(rows[at + 1 :], columns=rows[at]).astype(object)
    return pd.read_json(path, lines=True, dtype=False, convert_dates=False)


def _text(values: pd.Series) -> pd.Series:
    """Values as the system's text; empty or missing -> None."""
    out = values.astype(object).where(values.notna(), None)
    out = out.map(lambda v: v if v is None or isinstance(v, str) else str(v))
    return out.where(out != "", None)


def person_records(sources: list[Source], root: Path, month_end: date) -> pd.DataFrame:
    """One row per person record of every person source (COLUMNS + household)."""
    frames = []
    for source in sources:
        columns = person_columns(source)
        if not columns:
            continue
        raw = read_system(source, root, month_end)
        keys = _text(raw[source.record_key.column])
        frame = pd.DataFrame({"record_id": source.source + ":" + keys, "source": source.source})
        for canonical in (*COLUMNS[2:], "household"):
            column = columns.get(canonical)
            frame[canonical] = _text(raw[column]) if column else None
        frames.append(frame)
    records = pd.concat(frames, ignore_index=True)
    if records["record_id"].duplicated().any():
        raise ValueError("duplicate record ids")
    return records


def true_persons(county: Path, month_end: date) -> pd.DataFrame:
    """record_id -> the true person, from the truth's records shown at the month end."""
    columns = ["source", "record_key", "valid_from", "valid_to", "person_id", "related_person_id"]
    r = pq.read_table(county / "truth" / "source_records.parquet", columns=columns).to_pandas()
    shown = (r["valid_from"] <= month_end) & (r["valid_to"].isna() | (r["valid_to"] > month_end))
    r = r[shown.astype(bool)]
    person = r["person_id"].fillna(r["related_person_id"])  # units: the legal representative
    return pd.DataFrame({"record_id": r["source"] + ":" + r["record_key"], "person_id": person})


def twin_pairs(county: Path) -> pd.DataFrame:
    """Pairs of true persons with the same mother and birth date (twins, triplets: 3 pairs)."""
    p = pd.read_parquet(county / "truth" / "persons.parquet",
                        columns=["person_id", "mother_id", "birth_date"])  # fmt: skip
    p = p[p["mother_id"].notna()]
    pairs = p.merge(p, on=["mother_id", "birth_date"], suffixes=("_a", "_b"))
    pairs = pairs[pairs["person_id_a"] < pairs["person_id_b"]]
    return pairs[["person_id_a", "person_id_b"]].reset_index(drop=True)


def build(out: Path) -> pd.DataFrame:
    """Flatten DIR/county into DIR/records, truth and twins .parquet; returns the records."""
    county = out / "county"
    meta = json.loads((county / "truth" / "meta.json").read_text(encoding="utf-8"))
    month_end = date.fromisoformat(meta["month_ends"][-1])
    sources = list(load_contracts(sources_dir=MAPPINGS).sources.values())
    records = person_records(sources, county / "sources", month_end)
    truth = true_persons(county, month_end)
    truth = truth[truth["record_id"].str.partition(":")[0].isin(set(records["source"]))]
    if set(truth["record_id"]) != set(records["record_id"]) or truth["person_id"].isna().any():
        raise ValueError("the records read differ from the truth's records at the month end")
    records.to_parquet(out / "records.parquet", index=False)
    truth.to_parquet(out / "truth.parquet", index=False)
    twin_pairs(county).to_parquet(out / "twins.parquet", index=False)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--flatten-only", action="store_true", help="reuse DIR/county as it is")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    onetable = Path(sys.executable).with_name("onetable")
    if not args.flatten_only:
        subprocess.run([onetable, "demo", "generate", "--out", args.out / "county", "--persons",
                        str(args.persons), "--seed", str(args.seed), "--months", "1"],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    generated = time.perf_counter()
    records = build(args.out)
    done = time.perf_counter()
    print(f"generate {generated - started:.1f} s, flatten {done - generated:.1f} s")
    print(f"records {len(records)}:", records["source"].value_counts().sort_index().to_dict())


if __name__ == "__main__":
    main()
