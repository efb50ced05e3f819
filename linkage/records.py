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

from onetable.linkage import standardize as st
from onetable.linkage.match import match
from onetable.linkage.model import Model, load_model

COLUMNS = ("record_id", "source", "name", "sex", "birth_date", "id_number", "phone", "address")
# flags that leave a number usable for comparison but not as proof of identity
_UNVERIFIED = ("id_bad_checksum", "id_bad_date", "id_upgraded_15")


_PARALLEL_MIN = 200_000  # distinct values: fewer convert faster in one process than in several


def _apply(convert: Callable[[str | None], st.Result], values: list) -> list[st.Result]:
    return [convert(v) for v in values]


class _Converter:
    """Standardizers run on the distinct values of columns: in this process for small inputs,
    across one process per core for large ones (they are pure Python, one core each)."""

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
    ) -> dict[str, tuple[pd.Series, pd.Series]]:
        """Per job: each record's converted value and the second part of its result (the flags
        a standardizer raised)."""
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
        for k, (convert, values) in jobs.items():
            codes, _ = factorized[k]
            parts = futures[k] if self.pool is None else [f.result() for f in futures[k]]
            results = [r for part in parts for r in part] + [convert(None)]  # code -1: missing
            converted = np.empty(len(results), dtype=object)
            converted[:] = [r[0] for r in results]
            flags = np.empty(len(results), dtype=object)
            flags[:] = [r[1] for r in results]
            out[k] = (
                pd.Series(converted[codes], index=values.index),
                pd.Series(flags[codes], index=values.index),
            )
        return out


def _pinyin(name: str | None) -> st.Result:
    return st.pinyin_key(name), ()


def _id_facts(number: str | None) -> tuple[None, tuple[str | None, str | None]]:
    return None, st.id_facts(number)  # birth date and sex, in the place of flags


def clean_records(frame: pd.DataFrame) -> pd.DataFrame:
    """The standardized input a competent user would give any linkage tool: record_id, source,
    name (NFKC, simplified), name_pinyin, sex, birth_date (ISO; the stated one, else the one in
    the ID number), id_number, id_valid (its check character and birth date right and not
    upgraded from 15 digits), phone, address, household."""
    missing = [c for c in ("record_id", "source") if c not in frame.columns]
    if missing:
        raise ValueError(f"link-records: the input has no column(s) {missing}; map them with --map")
    raw = frame.reindex(columns=[*COLUMNS, "household"])
    raw = raw.astype(object).where(raw.notna() & (raw != ""), None)
    jobs = {
        "id_number": st.id_number, "name": st.name, "birth_date": st.parse_date, "sex": st.sex,
        "phone": st.phone, "address": st.address, "household": st.text,
    }  # fmt: skip
    with _Converter(int(raw["id_number"].nunique() + raw["address"].nunique())) as converter:
        done = converter.run({k: (f, raw[k]) for k, f in jobs.items()})
        id_number, id_flags = done["id_number"]
        id_valid = id_number.notna() & id_flags.map(frozenset(_UNVERIFIED).isdisjoint).astype(bool)
        second = converter.run({
            "name_pinyin": (_pinyin, done["name"][0]),
            "id_facts": (_id_facts, id_number.where(id_valid)),
        })  # fmt: skip
    facts = second["id_facts"][1]
    clean = pd.DataFrame({
        "record_id": raw["record_id"].astype(str),
        "source": raw["source"].astype(str),
        "name": done["name"][0],
        "name_pinyin": second["name_pinyin"][0],
        "sex": done["sex"][0].fillna(facts.str[1]),
        "birth_date": done["birth_date"][0].fillna(facts.str[0]),
        "id_number": id_number,
        "id_valid": id_valid.astype(bool),
        "phone": done["phone"][0],
        "address": done["address"][0],
        "household": done["household"][0],
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
