"""Benchmark: do person ids stay put? A rerun, a rerun in another record order, and reruns after
correcting typos, each through the id registry (`linkage.ids.stable_ids`).

Run on demand:  .venv/bin/python bench/bench_stability.py DIR [--share 0.01]
DIR from `bench/linkage_data.py` (records.parquet, truth.parquet, county/truth/persons.parquet).
A typo is a record whose cleaned name, ID number or birth date differs from its person's true
one; a correction writes the true values into the raw record. Ids are counted kept for the
persons the first run got right (all their records in one cluster holding no one else): their
ids must not change (docs/architecture.md, "Stable ids"). Prints counts and shares only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from onetable.linkage.ids import stable_ids
from onetable.linkage.match import match
from onetable.linkage.model import load_model
from onetable.linkage.records import clean_records


def _ids(raw: pd.DataFrame, registry: pd.DataFrame) -> pd.Series:
    labels = match(clean_records(raw), load_model()).labels
    clusters = pd.DataFrame({"key": labels.index, "cluster": labels.to_numpy()})
    ids, _, _ = stable_ids(clusters, registry, 1)
    return ids


def _right(ids: pd.Series, truth: pd.Series) -> pd.Index:
    """Records of persons whose records form exactly one cluster of their own."""
    frame = pd.DataFrame({"got": ids, "true": truth.reindex(ids.index)})
    per_true = frame.groupby("true")["got"].nunique()
    per_got = frame.groupby("got")["true"].nunique()
    ok_true = per_true.index[per_true == 1]
    ok = frame["true"].isin(ok_true) & frame["got"].map(per_got).eq(1)
    return frame.index[ok]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--share", type=float, default=0.01, help="share of typos corrected")
    args = parser.parse_args()
    raw = pd.read_parquet(args.dir / "records.parquet")
    truth = pd.read_parquet(args.dir / "truth.parquet").set_index("record_id")["person_id"]
    persons = pd.read_parquet(args.dir / "county" / "truth" / "persons.parquet")
    persons = persons.set_index("person_id")[["name", "id_number", "birth_date"]]

    first = _ids(raw, pd.DataFrame(columns=["key", "person_id"]))
    registry = pd.DataFrame({"key": first.index, "person_id": first.to_numpy()})
    right = _right(first, truth)
    print(f"records {len(raw)}, persons found {first.nunique()}, right {len(right)} records")

    rerun = _ids(raw, registry)
    print(f"rerun: {(rerun[first.index] == first).mean():.4%} of ids kept")
    shuffled = _ids(raw.sample(frac=1, random_state=3), registry)
    print(f"rerun, records shuffled: {(shuffled[first.index] == first).mean():.4%} of ids kept")

    clean = clean_records(raw).set_index("record_id")
    true = persons.reindex(truth.reindex(clean.index)).set_axis(clean.index)
    true_born = pd.to_datetime(true["birth_date"]).dt.strftime("%Y-%m-%d")
    typo = (
        (clean["name"].notna() & (clean["name"] != true["name"]))
        | (clean["id_number"].notna() & (clean["id_number"] != true["id_number"]))
        | (clean["birth_date"].notna() & (clean["birth_date"] != true_born))
    )
    typos = typo.index[typo]
    rng = np.random.default_rng(1)
    for share in sorted({args.share, 1.0}):
        fixed_ids = rng.choice(typos, size=round(len(typos) * share), replace=False)
        fixed = raw.set_index("record_id")
        at = pd.Index(fixed_ids)
        for col in ("name", "id_number"):
            has = fixed.loc[at, col].notna() & (fixed.loc[at, col] != "")
            fixed.loc[at[has.to_numpy()], col] = true.loc[at[has.to_numpy()], col]
        has = fixed.loc[at, "birth_date"].notna() & (fixed.loc[at, "birth_date"] != "")
        fixed.loc[at[has.to_numpy()], "birth_date"] = true_born[at[has.to_numpy()]]
        after = _ids(fixed.reset_index(), registry)
        kept = (after[right] == first[right]).mean()
        print(
            f"{len(at)} of {len(typos)} typos corrected ({share:.0%}): "
            f"{kept:.4%} of the ids of persons found right kept"
        )


if __name__ == "__main__":
    main()
