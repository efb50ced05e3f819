"""The Splink baseline of the person-linkage benchmark (issue 8): Splink 5 on DuckDB, deduplicating
the records that `onetable.linkage.records.clean_records` returns, configured as a competent user
would configure it for this data (not tuned against the truth).

`bench/bench_linkage.py` calls `run(clean, timings)` in a fresh process; `python
bench/baseline_splink.py CLEAN.parquet [--out IDS.parquet] [--truth TRUTH.parquet]` runs it alone
and prints stage timings, peak RSS and counts (never a record's values).

Splink is a bench-only dependency: `make bench-deps`.

The model (Fellegi-Sunter, link_type dedupe_only):

- blocking for prediction, a union of: same ID number; same name pinyin and birth date (catches ID
  typos and missing IDs); same name and phone (catches birth-date errors); same surname character,
  birth date and sex (catches homophone and similar-shape given names). Every rule keeps the
  blocks small at the 1,000,000-person scale, so no salting or chunking is needed.
- comparisons: ID number exact / Levenshtein 1 (a digit typo; an adjacent transposition falls to
  else and the other fields carry the pair: DuckDB's damerau_levenshtein costs about three times
  levenshtein and doubled the time of u estimation); name exact (term-frequency adjusted, so
  common names weigh less) / same pinyin (homophones, term-frequency adjusted on the pinyin) /
  Jaro-Winkler of the pinyin >= 0.9 / Jaro-Winkler of the characters >= 0.8 (one character
  different in a three-character name) / else; birth date with Splink's DateOfBirthComparison
  (exact, one edit, within a month, a year, ten years, else: a day/month swap lands in the month
  or year level); sex exact; phone exact; address Jaro-Winkler 0.9 / 0.7 (a stale address falls
  to else).
- training: the prior from deterministic rules with an assumed recall; u by random sampling
  (5e6 pairs, seeded); m by EM on two training blockings (ID number; name pinyin + birth date),
  which between them leave every comparison trained at least once.
- prediction at match probability 0.9, then connected components at the same threshold.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from pathlib import Path

import pandas as pd

# The columns of clean_records that the model reads. Not given to Splink: source, id_valid (a typo
# breaks the check character, so a Levenshtein-1 pair is the signal), household (a department's
# own key, not comparable across departments).
COLUMNS = ["record_id", "name", "name_pinyin", "sex", "birth_date", "id_number", "phone", "address"]

THRESHOLD = 0.9  # match probability for both predict and clustering
U_MAX_PAIRS = 5e6
SEED = 8
PRIOR_RECALL = 0.9  # assumed recall of the deterministic rules used to estimate the prior


def _settings():
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    id_number = cl.CustomComparison(
        output_column_name="id_number",
        comparison_levels=[
            cll.NullLevel("id_number"),
            cll.ExactMatchLevel("id_number"),
            cll.LevenshteinLevel("id_number", 1),
            cll.ElseLevel(),
        ],
    )
    name = cl.CustomComparison(
        output_column_name="name",
        comparison_levels=[
            cll.NullLevel("name"),
            cll.ExactMatchLevel("name").configure(tf_adjustment_column="name"),
            cll.ExactMatchLevel("name_pinyin").configure(tf_adjustment_column="name_pinyin"),
            cll.JaroWinklerLevel("name_pinyin", 0.9),
            cll.JaroWinklerLevel("name", 0.8),
            cll.ElseLevel(),
        ],
    )
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_id",
        blocking_rules_to_generate_predictions=[
            block_on("id_number"),
            block_on("name_pinyin", "birth_date"),
            block_on("name", "phone"),
            block_on("substr(name, 1, 1)", "birth_date", "sex"),
        ],
        comparisons=[
            id_number,
            name,
            cl.DateOfBirthComparison("birth_date", input_is_string=True),
            cl.ExactMatch("sex"),
            cl.ExactMatch("phone"),
            cl.JaroWinklerAtThresholds("address", [0.9, 0.7]),
        ],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )


def run(clean: pd.DataFrame, timings: dict[str, float]) -> pd.Series:
    """Cluster ids (index record_id) for the cleaned records `clean`; fills `timings` with the
    seconds of each stage: load, train_u (the prior and u), train_m, predict, cluster."""
    from splink import DuckDBAPI, Linker, block_on

    start = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal start
        now = time.perf_counter()
        timings[stage] = timings.get(stage, 0.0) + now - start
        start = now

    frame = clean.reindex(columns=COLUMNS).astype(object)
    frame = frame.where(frame.notna(), None)  # NaN and NA as SQL NULL
    frame["record_id"] = frame["record_id"].astype(str)
    db_api = DuckDBAPI()  # in memory, all cores
    records = db_api.register(frame, table_name="records")
    linker = Linker(records, _settings(), log_level=logging.WARNING)
    lap("load")

    linker.training.estimate_probability_two_random_records_match(
        [block_on("id_number"), block_on("name", "birth_date")], recall=PRIOR_RECALL
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=U_MAX_PAIRS, seed=SEED)
    lap("train_u")

    for rule in (block_on("id_number"), block_on("name_pinyin", "birth_date")):
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    lap("train_m")

    predictions = linker.inference.predict(threshold_match_probability=THRESHOLD)
    lap("predict")

    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=THRESHOLD
    )
    result = clusters.as_duckdbpyrelation().select("record_id, cluster_id").df()
    lap("cluster")

    ids = pd.Series(result["cluster_id"].to_numpy(), index=result["record_id"].to_numpy())
    ids.index.name = "record_id"
    ids.name = "person_id"
    return ids.reindex(frame["record_id"].to_numpy())


def pairwise_scores(predicted: pd.Series, truth: pd.Series) -> dict[str, float]:
    """Pairwise precision, recall and F1 of the clustering `predicted` against `truth` (both
    indexed by record_id), counted from the contingency table of the two partitions."""
    both = pd.DataFrame({"p": predicted, "t": truth.reindex(predicted.index)}).dropna()

    def pairs(counts: pd.Series) -> int:
        counts = counts.astype("int64")
        return int((counts * (counts - 1) // 2).sum())

    true_positive = pairs(both.groupby(["p", "t"]).size())
    predicted_pairs = pairs(both.groupby("p").size())
    true_pairs = pairs(both.groupby("t").size())
    precision = true_positive / predicted_pairs if predicted_pairs else 1.0
    recall = true_positive / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "true_pairs": true_pairs,
        "predicted_pairs": predicted_pairs,
        "true_positive_pairs": true_positive,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clean", type=Path, help="Parquet file of cleaned records")
    parser.add_argument("--out", type=Path, help="write record_id, person_id here (Parquet)")
    parser.add_argument("--truth", type=Path, help="Parquet file of record_id, person_id")
    args = parser.parse_args(argv)

    import splink

    clean = pd.read_parquet(args.clean)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    ids = run(clean, timings)
    total = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux

    print(f"splink {splink.__version__}: {len(clean):,} records -> {ids.nunique():,} clusters")
    for stage, seconds in timings.items():
        print(f"  {stage:<8} {seconds:8.1f} s")
    print(f"  {'total':<8} {total:8.1f} s, peak RSS {peak:.2f} GiB")
    if args.out:
        ids.rename("person_id").reset_index().to_parquet(args.out, index=False)
    if args.truth:
        truth = pd.read_parquet(args.truth, columns=["record_id", "person_id"])
        truth = truth.set_index(truth["record_id"].astype(str))["person_id"]
        for key, value in pairwise_scores(ids, truth).items():
            print(
                f"  {key:<20} {value:,.4f}"
                if isinstance(value, float)
                else f"  {key:<20} {value:,}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
