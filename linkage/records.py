"""Person records as departments give them, cleaned and linked: `onetable link-records` and the
benchmarks use this, the link stage uses the same cleaning and matching on staged records.

Input columns: record_id, source, name, sex, birth_date, id_number, phone, address (raw strings;
any may be empty), and optionally household (a department's household key).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from onetable.linkage import standardize as st
from onetable.linkage.match import match
from onetable.linkage.model import Model, load_model

COLUMNS = ("record_id", "source", "name", "sex", "birth_date", "id_number", "phone", "address")
# flags that leave a number usable for comparison but not as proof of identity
_UNVERIFIED = ("id_bad_checksum", "id_bad_date", "id_upgraded_15")


def standardized(
    values: pd.Series, convert: Callable[[str | None], st.Result]
) -> tuple[pd.Series, pd.Series]:
    """`convert` applied to each distinct value once (a name or a date repeats across many
    records): the values and, per record, the flags raised."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    results = [convert(v) for v in uniques]
    out = np.array([r[0] for r in results] + [None], dtype=object)
    flags = np.empty(len(results) + 1, dtype=object)
    flags[:] = [r[1] for r in results] + [()]
    if len(codes) and (codes < 0).any():  # missing values: what the converter says of None
        out[-1], flags[-1] = convert(None)
    return pd.Series(out[codes], index=values.index), pd.Series(flags[codes], index=values.index)


def _from_id(id_numbers: pd.Series, valid: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Birth date (ISO) and sex read from verified ID numbers."""
    facts, _ = standardized(id_numbers.where(valid), lambda v: (st.id_facts(v), ()))
    return facts.str[0], facts.str[1]


def clean_records(frame: pd.DataFrame) -> pd.DataFrame:
    """The standardized input a competent user would give any linkage tool: record_id, source,
    name (NFKC, simplified), name_pinyin, sex, birth_date (ISO; the stated one, else the one in
    the ID number), id_number, id_valid (its check character and birth date right and not
    upgraded from 15 digits), phone, address, household."""
    missing = [c for c in ("record_id", "source") if c not in frame.columns]
    if missing:
        raise ValueError(f"link-records: the input has no column(s) {missing}; map them with --map")
    raw = frame.reindex(columns=[*COLUMNS, "household"]).astype(object)
    raw = raw.where(raw.notna() & (raw != ""), None)
    id_number, id_flags = standardized(raw["id_number"], st.id_number)
    id_valid = id_number.notna() & ~id_flags.map(lambda f: any(x in _UNVERIFIED for x in f))
    name, _ = standardized(raw["name"], st.name)
    born, _ = standardized(raw["birth_date"], st.parse_date)
    sex, _ = standardized(raw["sex"], st.sex)
    id_born, id_sex_code = _from_id(id_number, id_valid)
    clean = pd.DataFrame({
        "record_id": raw["record_id"].astype(str),
        "source": raw["source"].astype(str),
        "name": name,
        "name_pinyin": standardized(name, lambda v: (st.pinyin_key(v), ()))[0],
        "sex": sex.fillna(id_sex_code),
        "birth_date": born.fillna(id_born),
        "id_number": id_number,
        "id_valid": id_valid.astype(bool),
        "phone": standardized(raw["phone"], st.phone)[0],
        "address": standardized(raw["address"], st.address)[0],
        "household": standardized(raw["household"], st.text)[0],
    })  # fmt: skip
    if clean["record_id"].duplicated().any():
        raise ValueError("link-records: record_id must be unique")
    return clean


def person_ids(labels: pd.Series) -> pd.Series:
    """P00000001… for cluster labels, numbered in the order of each cluster's first record."""
    codes, _ = pd.factorize(labels, sort=True)
    return pd.Series([f"P{c + 1:08d}" for c in codes], index=labels.index, name="person_id")


def link_records(
    frame: pd.DataFrame, timings: dict[str, float] | None = None, model: Model | None = None
) -> pd.DataFrame:
    """Person ids for raw records (COLUMNS): record_id, person_id in the input's order.
    `timings` receives seconds per stage (standardize, then the matcher's)."""
    timings = {} if timings is None else timings
    start = time.perf_counter()
    clean = clean_records(frame)
    timings["standardize"] = time.perf_counter() - start
    result = match(clean, model or load_model(), timings)
    ids = person_ids(result.labels)
    return pd.DataFrame(
        {"record_id": clean["record_id"], "person_id": ids[clean["record_id"]].to_numpy()}
    )


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
