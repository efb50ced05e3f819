"""The person-linkage baseline: plain recordlinkage 0.16 used as a competent user would, on the
same standardized records onetable gets (clean_records).

Candidate pairs are the union of exact blocks (ID number; name pinyin and birth date; name pinyin
and phone; name pinyin and address); each pair is compared in pandas (exact ID, Jaro-Winkler name,
exact birth date, sex and phone, Jaro-Winkler address, the string ones cut at 0.85 to make binary
features), classified by the unsupervised ECM (Fellegi-Sunter) classifier, and the matches joined
into persons by connected components.

`python bench/baseline_recordlinkage.py DIR` runs it once on DIR/records.parquet (from
bench/linkage_data.py) and prints counts and seconds only.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import recordlinkage as rl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

BLOCKS = (["id_number"], ["name_pinyin", "birth_date"], ["name_pinyin", "phone"],
          ["name_pinyin", "address"])  # fmt: skip
STRING_CUT = 0.85  # Jaro-Winkler at or above: agree (ECM needs binary features)


def _features(clean: pd.DataFrame, pairs: pd.MultiIndex) -> pd.DataFrame:
    compare = rl.Compare()
    compare.exact("id_number", "id_number", label="id_number")
    compare.string("name", "name", method="jarowinkler", threshold=STRING_CUT, label="name")
    compare.exact("birth_date", "birth_date", label="birth_date")
    compare.exact("sex", "sex", label="sex")
    compare.exact("phone", "phone", label="phone")
    compare.string("address", "address", method="jarowinkler", threshold=STRING_CUT,
                   label="address")  # fmt: skip
    return compare.compute(pairs, clean).astype(np.int8)


def _components(n: int, matches: pd.MultiIndex) -> np.ndarray:
    """Connected components of the match graph over record positions 0..n-1."""
    left, right = matches.get_level_values(0), matches.get_level_values(1)
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def run(clean: pd.DataFrame, timings: dict[str, float]) -> pd.Series:
    """record_id -> person id for the records of `clean` (clean_records' output); fills
    `timings` with the seconds of each step."""
    data = clean.reset_index(drop=True)
    started = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal started
        now = time.perf_counter()
        timings[step] = now - started
        started = now

    indexer = rl.Index()
    for keys in BLOCKS:
        indexer.block(keys)
    pairs = indexer.index(data)
    timings["candidate_pairs"] = len(pairs)
    lap("block")
    features = _features(data, pairs)
    lap("compare")
    matches = rl.ECMClassifier(binarize=None).fit_predict(features)
    timings["matched_pairs"] = len(matches)
    lap("classify")
    labels = _components(len(data), matches)
    lap("cluster")
    return pd.Series(labels, index=data["record_id"].to_numpy(), name="person_id")


def main() -> None:
    from onetable.linkage.records import clean_records

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="a folder written by bench/linkage_data.py")
    args = parser.parse_args()
    started = time.perf_counter()
    raw = pd.read_parquet(args.dir / "records.parquet")
    clean = clean_records(raw)
    timings = {"clean": time.perf_counter() - started}
    persons = run(clean, timings)
    total = time.perf_counter() - started
    steps = ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                      for k, v in timings.items())  # fmt: skip
    print(f"{len(raw)} records -> {persons.nunique()} persons in {total:.1f} s ({steps})")


if __name__ == "__main__":
    main()
