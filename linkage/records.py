"""Person records as departments give them, cleaned and linked: `onetable link-records` and the
benchmarks use this, the link stage uses the same cleaning and matching on staged records.

Input columns: record_id, source, name, sex, birth_date, id_number, phone, address (raw strings;
any may be empty), and optionally household (a department's household key).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from onetable.linkage import standardize as st
from onetable.linkage.cleaners import check_input, clean_columns
from onetable.linkage.match import match
from onetable.linkage.model import Model, load_model

COLUMNS = ("record_id", "source", "name", "sex", "birth_date", "id_number", "phone", "address")
# flags that leave a number usable for comparison but not as proof of identity
_UNVERIFIED = frozenset(("id_bad_checksum", "id_bad_date", "id_upgraded_15"))


_PARALLEL_MIN = 200_000  # distinct values: fewer convert faster in one process than in several


def _apply(convert: Callable[[str | None], tuple], values: list) -> list[tuple]:
    return [convert(v if isinstance(v, str) else str(v)) for v in values]


def _id(raw: str | None) -> tuple[str | None, tuple[bool, str | None, str | None]]:
    """The ID number, whether it is verified, and the birth date and sex a verified one gives."""
    number, flags = st.id_number(raw)
    verified = number is not None and _UNVERIFIED.isdisjoint(flags)
    return number, (verified, *(st.id_facts(number) if verified else (None, None)))


def _name(raw: str | None) -> tuple[str | None, str | None]:
    """The name and its pinyin key."""
    name, _ = st.name(raw)
    return name, st.pinyin_key(name)


class _Converter:
    """Converters run on the distinct values of columns: in this process for small inputs,
    across up to four processes (one per core) for large ones (the standardizers are pure
    Python)."""

    def __init__(self, distinct: int) -> None:
        self.workers = min(os.cpu_count() or 1, 4) if distinct >= _PARALLEL_MIN else 1
        self.pool = (
            ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
            if self.workers > 1
            else None
        )

    def __enter__(self) -> _Converter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool:
            self.pool.shutdown()

    def run(
        self, jobs: dict[str, tuple[Callable, pd.Series]]
    ) -> dict[str, tuple[np.ndarray, list]]:
        """Per job: each record's code (-1 for missing) and the results for the distinct
        values in code order, the missing value's last. Empty strings convert as missing
        values do."""
        factorized = {k: pd.factorize(v, use_na_sentinel=True) for k, (_, v) in jobs.items()}
        futures = {}
        for k, (convert, _) in jobs.items():
            uniques = list(factorized[k][1])
            if self.pool is None:
                futures[k] = [_apply(convert, uniques)]
                continue
            size = max(1, -(-len(uniques) // (2 * self.workers)))
            futures[k] = [
                self.pool.submit(_apply, convert, uniques[i : i + size])
                for i in range(0, len(uniques), size)
            ]
        out = {}
        for k, (convert, _) in jobs.items():
            parts = futures[k] if self.pool is None else [f.result() for f in futures[k]]
            out[k] = factorized[k][0], [r for part in parts for r in part] + [convert(None)]
        return out


def _strings(codes: np.ndarray, values: list) -> pa.Array:
    """Per record, the value of its code (-1: the last, the missing value's) as Arrow strings:
    a county's records take a fraction of the memory of Python objects."""
    return pa.array(values, type=pa.string()).take(pa.array(codes % len(values)))


def _text(column: pd.Series) -> pa.Array:
    column = column if pd.api.types.is_string_dtype(column) else column.astype(str)
    return pa.array(column, type=pa.string(), from_pandas=True)


def _of_another(
    valid: np.ndarray,
    number: pa.Array,
    born: pa.Array,
    sex: pa.Array,
    id_born: pa.Array,
    id_sex: pa.Array,
) -> np.ndarray:
    """Per record, whether its verified number is another person's (`st.id_of_another`),
    asked only where a stated birth date or sex differs from the number's."""
    differ = pc.or_kleene(pc.not_equal(born, id_born), pc.not_equal(sex, id_sex))
    rows = np.flatnonzero(valid & pc.fill_null(differ, False).to_numpy(zero_copy_only=False))
    another = np.zeros(len(valid), dtype=bool)
    picked = [a.take(pa.array(rows)).to_pylist() for a in (number, born, sex)]
    another[rows] = [st.id_of_another(*r) for r in zip(*picked, strict=True)]
    return another


def clean_records(frame: pd.DataFrame) -> pd.DataFrame:
    """The standardized input a competent user would give any linkage tool, in Arrow-backed
    string columns: record_id, source, name (NFKC, simplified), name_pinyin, sex, birth_date
    (ISO; the stated one, else the one in the ID number), id_number (none where it is a
    relative's, `st.id_of_another`), id_valid (a bool: its check character and birth date right
    and not upgraded from 15 digits), phone, address, household."""
    missing = [c for c in ("record_id", "source") if c not in frame.columns]
    if missing:
        raise ValueError(f"link-records: the input has no column(s) {missing}; map them with --map")
    empty = pd.Series(None, index=frame.index, dtype=object)
    jobs = {
        "id_number": _id, "name": _name, "birth_date": st.parse_date, "sex": st.sex,
        "phone": st.phone, "address": st.address, "household": st.text,
    }  # fmt: skip
    columns = {k: frame[k] if k in frame.columns else empty for k in jobs}
    distinct = int(columns["id_number"].nunique() + columns["address"].nunique())
    with _Converter(distinct) as converter:
        done = converter.run({k: (f, columns[k]) for k, f in jobs.items()})

    def first(k: str) -> pa.Array:
        codes, results = done[k]
        return _strings(codes, [r[0] for r in results])

    codes, results = done["id_number"]
    facts = [r[1] for r in results]
    number, sex, born = first("id_number"), first("sex"), first("birth_date")
    valid = np.array([f[0] for f in facts], dtype=bool)[codes % len(facts)]
    id_born, id_sex = (_strings(codes, [f[i] for f in facts]) for i in (1, 2))
    # a verified number is a relative's (a newborn's mother's) where the record's own birth
    # date or sex says so: no identity, and it gives the record no birth date or sex
    another = _of_another(valid, number, born, sex, id_born, id_sex)
    if another.any():
        keep = pa.array(~another)
        number, id_born, id_sex = (pc.if_else(keep, a, None) for a in (number, id_born, id_sex))
        valid &= ~another
    clean = {
        "record_id": _text(frame["record_id"]),
        "source": _text(frame["source"]),
        "name": first("name"),
        "name_pinyin": _strings(done["name"][0], [r[1] for r in done["name"][1]]),
        "sex": pc.coalesce(sex, id_sex),
        "birth_date": pc.coalesce(born, id_born),
        "id_number": number,
        "id_valid": valid,
        "phone": first("phone"),
        "address": first("address"),
        "household": first("household"),
    }
    clean = pd.DataFrame({
        k: v if k == "id_valid" else pd.arrays.ArrowStringArray(v) for k, v in clean.items()
    })  # fmt: skip
    if clean["record_id"].duplicated().any():
        raise ValueError("link-records: record_id must be unique")
    return clean


def person_ids(labels: pd.Series) -> pd.Series:
    """P00000001… for cluster labels, numbered in the order of each cluster's first record."""
    codes, _ = pd.factorize(labels, sort=True)
    return pd.Series([f"P{c + 1:08d}" for c in codes], index=labels.index, name="person_id")


def clean(frame: pd.DataFrame, model: Model) -> pd.DataFrame:
    """Raw records with the model's input columns, checked and cleaned by its cleaners."""
    check_input(list(frame.columns), model)
    return clean_records(frame) if model.chinese else clean_columns(frame, model)


def link_records(
    frame: pd.DataFrame, timings: dict[str, float] | None = None, model: Model | None = None
) -> pd.DataFrame:
    """Person ids for raw records (the model's input columns; the shipped Chinese model's are
    COLUMNS): record_id, person_id in the input's order. `timings` receives seconds per stage
    (standardize, then the matcher's)."""
    timings = {} if timings is None else timings
    model = model or load_model()
    start = time.perf_counter()
    cleaned = clean(frame, model)
    timings["standardize"] = time.perf_counter() - start
    labels = match(cleaned, model, timings).labels
    del cleaned  # the matcher's copy is all it needs: a large county's records are gigabytes
    record_ids = frame["record_id"].astype(str)
    return pd.DataFrame({
        "record_id": record_ids.to_numpy(),
        "person_id": person_ids(labels).reindex(record_ids).to_numpy(),
    })  # fmt: skip


def read_table(path: Path, mapping: dict[str, str]) -> pd.DataFrame:
    """A CSV (UTF-8 or GB18030) or Parquet file as text, its columns renamed by `mapping`
    (canonical name -> the file's column)."""
    if path.suffix.lower() == ".parquet":  # Arrow strings: a third of the memory of objects
        frame = pd.read_parquet(path, dtype_backend="pyarrow")
        frame = frame.astype({c: "string[pyarrow]" for c in frame.columns})
    else:
        from onetable.connectors.files import detect_encoding

        frame = pd.read_csv(path, dtype=str, encoding=detect_encoding(path), keep_default_na=False)
    return frame.rename(columns={v: k for k, v in mapping.items()})


def write_table(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix.lower() == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
