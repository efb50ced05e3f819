"""The linkage evaluation figures on small clusterings checked by hand, and the pair counts
against enumerating every pair on random ones."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from onetable.linkage.evaluate import (
    bcubed,
    evaluate,
    pair_counts,
    pairwise,
    split_merged,
    twins_merged,
)

# predicted, true, hard mask, pair counts (found, claimed, true), hard pair counts, B-cubed P, R
CASES = {
    "perfect": (
        ["a", "a", "b"], [1, 1, 2], [False, False, True],
        (1, 1, 1), (0, 0, 0), 1.0, 1.0,
    ),
    "all merged": (
        ["x"] * 4, [1, 1, 2, 2], [False] * 4,
        (2, 6, 2), (0, 0, 0), 0.5, 1.0,
    ),
    "all split": (
        ["a", "b", "c"], [1, 1, 1], [True, False, False],
        (0, 0, 3), (0, 0, 2), 1.0, 1 / 3,
    ),
    "mixed": (
        ["a", "a", "b", "b", "b"], [1, 1, 1, 2, 2], [False, False, True, False, False],
        (2, 4, 4), (0, 2, 2), 11 / 15, 11 / 15,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_pairs_and_bcubed_by_hand(case: str) -> None:
    predicted, true, hard, pairs, hard_pairs, b_precision, b_recall = CASES[case]
    keys = ("found", "claimed", "true")
    assert pair_counts(predicted, true) == dict(zip(keys, pairs, strict=True))
    assert pair_counts(predicted, true, hard) == dict(zip(keys, hard_pairs, strict=True))
    b = bcubed(predicted, true)
    assert b["precision"] == pytest.approx(b_precision)
    assert b["recall"] == pytest.approx(b_recall)


@pytest.mark.parametrize(
    ("case", "precision", "recall", "f1"),
    [("perfect", 1, 1, 1), ("all merged", 1 / 3, 1, 0.5), ("all split", 1, 0, 0),
     ("mixed", 0.5, 0.5, 0.5)],
)  # fmt: skip
def test_pairwise_scores(case: str, precision: float, recall: float, f1: float) -> None:
    predicted, true = CASES[case][:2]
    assert pairwise(predicted, true) == pytest.approx(
        dict(precision=precision, recall=recall, f1=f1)
    )


def test_hard_scores_when_every_hard_pair_is_wrong() -> None:
    predicted, true, hard = CASES["mixed"][:3]
    assert pairwise(predicted, true, hard) == dict(precision=0.0, recall=0.0, f1=0.0)


@pytest.mark.parametrize(
    ("case", "split", "merged", "clusters"),
    [("perfect", 0, 0, 2), ("all merged", 0, 2, 1), ("all split", 1, 0, 3), ("mixed", 1, 2, 2)],
)
def test_split_and_merged_persons(case: str, split: int, merged: int, clusters: int) -> None:
    predicted, true = CASES[case][:2]
    counts = split_merged(predicted, true)
    assert (counts["persons_split"], counts["persons_merged"]) == (split, merged)
    assert counts["predicted_clusters"] == clusters
    assert counts["persons"] == len(set(true))


TWINS = pd.DataFrame({"person_id_a": ["T1", "T3"], "person_id_b": ["T2", "T4"]})


@pytest.mark.parametrize(
    ("predicted", "merged"),
    [(["x", "y", "y", "z"], 1), (["x", "x", "y", "z"], 0), (["x", "x", "x", "x"], 1)],
)
def test_twins_merged(predicted: list[str], merged: int) -> None:
    index = ["r1", "r2", "r3", "r4"]
    true = pd.Series(["T1", "T1", "T2", "T3"], index=index)  # T4 has no record
    got = twins_merged(pd.Series(predicted, index=index), true, TWINS)
    assert got == dict(twin_pairs=1, twins_merged=merged)


def test_series_are_aligned_on_the_record_id() -> None:
    true = pd.Series([1, 1, 1, 2, 2], index=list("abcde"))
    predicted = pd.Series(["b", "b", "b", "a", "a"], index=list("edcba"))  # mixed, reversed
    assert pairwise(predicted, true) == pytest.approx(dict(precision=0.5, recall=0.5, f1=0.5))
    with pytest.raises(ValueError, match="same records"):
        pairwise(predicted.iloc[:4], true)
    with pytest.raises(ValueError, match="same records"):
        pairwise(predicted.rename(index={"e": "z"}), true)


def test_evaluate_names_every_figure() -> None:
    index = ["r1", "r2", "r3", "r4"]
    true = pd.Series(["T1", "T1", "T2", "T3"], index=index)
    predicted = pd.Series(["x", "y", "y", "z"], index=index)
    hard = pd.Series([False, True, False, False], index=index)
    out = evaluate(predicted, true, hard, TWINS)
    assert out["pair_recall"] == 0.0 and out["pair_precision"] == 0.0
    assert out["hard_records"] == 1 and out["twins_merged"] == 1
    assert {"bcubed_f1", "persons_split", "persons_merged", "hard_precision"} <= out.keys()


def test_pair_counts_agree_with_enumerating_the_pairs() -> None:
    rng = np.random.default_rng(8)
    predicted, true = rng.integers(0, 40, 300), rng.integers(0, 60, 300)
    hard = rng.random(300) < 0.3
    found = claimed = together = 0
    for i, j in combinations(range(300), 2):
        if hard[i] or hard[j]:
            same_p, same_t = predicted[i] == predicted[j], true[i] == true[j]
            found += same_p and same_t
            claimed += same_p
            together += same_t
    assert pair_counts(predicted, true, hard) == dict(found=found, claimed=claimed, true=together)
