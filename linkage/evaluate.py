"""How good a person clustering is against the true one: pairwise and B-cubed precision and
recall, the same on the hard records (no valid ID number), twins merged, persons split or merged.

Pairs are counted from the contingency table of (predicted, true) cluster sizes with C(n, 2), never
enumerated: a county has millions of records. A clustering is a pandas Series of cluster labels
indexed by record id (aligned on the index) or an array in the same record order as the other.
An empty denominator gives 1.0: with no pair to find or claim, nothing was got wrong.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

Labels = pd.Series | np.ndarray | list


def _codes(predicted: Labels, true: Labels) -> tuple[np.ndarray, np.ndarray]:
    """Integer cluster codes of both clusterings in one record order (the true one's)."""
    if isinstance(predicted, pd.Series) and isinstance(true, pd.Series):
        if len(predicted) != len(true) or not predicted.index.isin(true.index).all():
            raise ValueError("the clusterings must label the same records")
        predicted = predicted.reindex(true.index)
    p, t = np.asarray(predicted), np.asarray(true)
    if len(p) != len(t):
        raise ValueError("the clusterings must label the same records")
    if pd.isna(p).any() or pd.isna(t).any():
        raise ValueError("every record needs a cluster label")
    return pd.factorize(p)[0], pd.factorize(t)[0]


def _pairs(sizes: np.ndarray) -> int:
    """Sum of C(n, 2) over cluster sizes."""
    sizes = sizes.astype(np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 1.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall) if precision + recall else 0.0


def _scores(found: int, claimed: int, true: int) -> dict[str, float]:
    precision, recall = _ratio(found, claimed), _ratio(found, true)
    return dict(precision=precision, recall=recall, f1=_f1(precision, recall))


def _cells(p: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each record's contingency cell, and each cell's predicted and true cluster."""
    width = int(t.max(initial=0)) + 1
    cell_of, cells = pd.factorize(p.astype(np.int64) * width + t)
    return cell_of, np.asarray(cells) // width, np.asarray(cells) % width


def pair_counts(predicted: Labels, true: Labels, hard: Labels | None = None) -> dict[str, int]:
    """Pairs put together by both clusterings (found), by the predicted one (claimed), by the
    true one (true). With `hard` (a record mask), only pairs with at least one hard record."""
    p, t = _codes(predicted, true)
    cell_of, _, _ = _cells(p, t)
    counts = {
        "found": _pairs(np.bincount(cell_of)),
        "claimed": _pairs(np.bincount(p)),
        "true": _pairs(np.bincount(t)),
    }
    if hard is None:
        return counts
    if isinstance(hard, pd.Series) and isinstance(true, pd.Series):
        hard = hard.reindex(true.index)
    easy = ~np.asarray(hard, dtype=bool)
    easy_counts = {  # pairs of two easy records, taken away
        "found": _pairs(np.bincount(cell_of, weights=easy).round()),
        "claimed": _pairs(np.bincount(p, weights=easy).round()),
        "true": _pairs(np.bincount(t, weights=easy).round()),
    }
    return {k: counts[k] - easy_counts[k] for k in counts}


def pairwise(predicted: Labels, true: Labels, hard: Labels | None = None) -> dict[str, float]:
    """Pairwise precision, recall and F1 (on pairs with a hard record when `hard` is given)."""
    c = pair_counts(predicted, true, hard)
    return _scores(c["found"], c["claimed"], c["true"])


def bcubed(predicted: Labels, true: Labels) -> dict[str, float]:
    """B-cubed precision, recall and F1: per record, the share of its predicted cluster that is
    truly its person and the share of its person's records in its predicted cluster, averaged."""
    p, t = _codes(predicted, true)
    if not len(p):
        return dict(precision=1.0, recall=1.0, f1=1.0)
    cell_of, cell_p, cell_t = _cells(p, t)
    n = np.bincount(cell_of).astype(float)
    precision = float((n * n / np.bincount(p)[cell_p]).sum() / len(p))
    recall = float((n * n / np.bincount(t)[cell_t]).sum() / len(p))
    return dict(precision=precision, recall=recall, f1=_f1(precision, recall))


def split_merged(predicted: Labels, true: Labels) -> dict[str, int]:
    """True persons spread over more than one predicted cluster (split), true persons sharing a
    predicted cluster with another person (merged), and the cluster counts."""
    p, t = _codes(predicted, true)
    _, cell_p, cell_t = _cells(p, t)
    clusters_of_person = np.bincount(cell_t)
    persons_in_cluster = np.bincount(cell_p)
    merged = np.unique(cell_t[persons_in_cluster[cell_p] > 1])
    return dict(
        persons=len(clusters_of_person),
        predicted_clusters=len(persons_in_cluster),
        persons_split=int((clusters_of_person > 1).sum()),
        persons_merged=len(merged),
    )


def twins_merged(predicted: Labels, true: Labels, twins: pd.DataFrame) -> dict[str, int]:
    """Twin pairs (person_id_a, person_id_b of `true`'s labels) both present in the records, and
    how many of them have records of both twins in one predicted cluster."""
    clusters, _ = _codes(predicted, true)
    shown = pd.DataFrame({"person": np.asarray(true), "cluster": clusters}).drop_duplicates()
    present = twins[twins["person_id_a"].isin(shown["person"])
                    & twins["person_id_b"].isin(shown["person"])]  # fmt: skip
    joined = present.merge(shown, left_on="person_id_a", right_on="person")
    joined = joined.merge(shown, left_on=["person_id_b", "cluster"],
                          right_on=["person", "cluster"])  # fmt: skip
    together = joined[["person_id_a", "person_id_b"]].drop_duplicates()
    return dict(twin_pairs=len(present), twins_merged=len(together))


def evaluate(
    predicted: Labels,
    true: Labels,
    hard: Labels | None = None,
    twins: pd.DataFrame | None = None,
) -> dict[str, float | int]:
    """Every figure above in one flat dict (keys pair_*, hard_*, bcubed_*, twin_*, persons_*);
    the labels are aligned and coded once (strings of millions of records are slow to hash)."""
    p, t = _codes(predicted, true)
    if hard is not None and isinstance(hard, pd.Series) and isinstance(true, pd.Series):
        hard = hard.reindex(true.index)
    out: dict[str, float | int] = {}
    out.update({f"pair_{k}": v for k, v in pairwise(p, t).items()})
    if hard is not None:
        out.update({f"hard_{k}": v for k, v in pairwise(p, t, np.asarray(hard)).items()})
        out["hard_records"] = int(np.asarray(hard, dtype=bool).sum())
    out.update({f"bcubed_{k}": v for k, v in bcubed(p, t).items()})
    out.update(split_merged(p, t))
    if twins is not None:
        out.update(twins_merged(p, np.asarray(true), twins))
    return out
