"""Person matching on DuckDB: blocking, comparison, a Fellegi–Sunter model fitted by EM, and
clustering under constraints. Input: cleaned records (`records.clean_records`); output: one
cluster label per record, the same for the same records in any order.

Steps, each timed: anchor (records sharing a verified ID number are one node), block (candidate
pairs by the model's rules, at least one record of each pair unanchored), compare (a level per
comparison per pair, in SQL), fit (u from random pairs, m and λ by EM on pattern counts), score
(log2 Bayes factors, the name's own frequency for an exact name) and cluster (the strongest
edges first; a merge is refused when it would join two anchors or a cannot-link pair).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from onetable.linkage.model import Model, Parameters, fit_em, level_shares
from onetable.schemas.rules import ID_CHECK, ID_WEIGHTS


@dataclass
class Result:
    """Cluster labels (the smallest record index of each cluster, by input order after sorting
    on source and record id) and what the run found."""

    labels: pd.Series  # record_id -> cluster label
    parameters: Parameters
    pairs: int
    edges: int
    refused: int


@contextmanager
def _timed(timings: dict[str, float], step: str):
    start = time.perf_counter()
    yield
    timings[step] = timings.get(step, 0.0) + time.perf_counter() - start


def id_corrections(numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For 18-character numbers whose check character is wrong: every number one digit typo or
    one adjacent swap away whose check character is right. Returns (row, candidate) arrays.

    GB 11643's check character makes this an equation rather than a search: a typo at position
    p changes the weighted sum by w_p·(b - a) mod 11, so exactly one digit b (if it is a digit)
    repairs it."""
    if len(numbers) == 0:
        return np.array([], dtype=np.int64), np.array([], dtype=object)
    raw = np.frombuffer("".join(numbers).encode("ascii"), dtype=np.uint8).reshape(-1, 18)
    body = (raw[:, :17] - ord("0")).astype(np.int64)
    check = np.array([ID_CHECK.index(chr(c)) for c in raw[:, 17]])  # the sum the check says
    weights = np.array(ID_WEIGHTS)
    total = (body * weights).sum(axis=1) % 11
    inverse = np.array([pow(int(w), -1, 11) for w in weights])
    rows, candidates = [], []

    def emit(mask: np.ndarray, digits: np.ndarray) -> None:
        texts = (digits + ord("0")).astype(np.uint8)
        tail = np.array([ord(ID_CHECK[s]) for s in range(11)], dtype=np.uint8)
        sums = (digits * weights).sum(axis=1) % 11
        out = np.concatenate([texts, tail[sums][:, None]], axis=1)
        rows.append(np.nonzero(mask)[0])
        candidates.append(out.view("S18").ravel().astype(str))

    for p in range(17):  # one digit typo in the body
        digit = (body[:, p] + (check - total) * inverse[p]) % 11
        ok = (digit <= 9) & (digit != body[:, p])
        fixed = body[ok].copy()
        fixed[:, p] = digit[ok]
        emit(ok, fixed)
    # a typo in the check character itself: the body's own check character
    emit(np.ones(len(body), dtype=bool), body)
    for p in range(16):  # adjacent digits swapped in the body
        swapped = body.copy()
        swapped[:, [p, p + 1]] = swapped[:, [p + 1, p]]
        sums = (swapped * weights).sum(axis=1) % 11
        ok = (sums == check) & (body[:, p] != body[:, p + 1])
        emit(ok, swapped[ok])
    row = np.concatenate(rows)
    candidate = np.concatenate(candidates)
    keep = candidate != np.asarray(numbers)[row]
    return row[keep], candidate[keep]


def _case(comparison_levels, null_columns: list[str]) -> str:
    nulls = " OR ".join(f"l.{c} IS NULL OR r.{c} IS NULL" for c in null_columns)
    whens = " ".join(
        f"WHEN {lv.when} THEN {i}" for i, lv in enumerate(comparison_levels) if lv.when
    )
    return f"CASE WHEN {nulls} THEN -1 {whens} ELSE {len(comparison_levels) - 1} END"


def _gammas(model: Model) -> str:
    return ", ".join(
        f"({_case(c.levels, c.columns)})::TINYINT AS g_{k}" for k, c in model.comparisons.items()
    )


def _load(con: duckdb.DuckDBPyConnection, clean: pd.DataFrame, model: Model) -> int:
    """The records as table `rec`, numbered in source and record id order (`idx`), so that
    the same records give the same clusters whatever order they came in. The numbers come
    from Arrow's sort of the two key columns alone: DuckDB never sorts a county's records."""
    table = pa.Table.from_pandas(clean.reindex(columns=model.columns), preserve_index=False)
    order = pc.sort_indices(
        table.select(["source", "record_id"]), [("source", "ascending"), ("record_id", "ascending")]
    )
    idx = np.empty(len(table), dtype=np.int64)
    idx[order.to_numpy()] = np.arange(len(table))
    table = table.append_column("idx", pa.array(idx))
    cols = ", ".join(
        f"coalesce({c}, false) AS {c}" if pa.types.is_boolean(t) else f"{c}::VARCHAR AS {c}"
        for c, t in zip(table.column_names, table.schema.types, strict=True)
        if c != "idx"
    )
    anchored = f"coalesce({model.anchor.when}, false)" if model.anchor else "false"
    con.register("clean_input", table)
    con.execute(
        f"CREATE OR REPLACE TABLE rec AS SELECT idx, {cols}, {anchored} AS anchored "
        "FROM clean_input"
    )
    con.unregister("clean_input")
    n, distinct = con.execute("SELECT count(*), count(DISTINCT record_id) FROM rec").fetchone()
    if n != distinct:
        raise ValueError("linkage: record_id must be unique")
    return n


def _nodes(con: duckdb.DuckDBPyConnection, model: Model) -> np.ndarray:
    """Each record's node: the first record of its verified identifier, else itself."""
    key = model.anchor.key if model.anchor else "idx"
    return (
        con.execute(
            f"SELECT CASE WHEN anchored THEN min(idx) OVER (PARTITION BY anchored, {key}) "
            "ELSE idx END AS node FROM rec ORDER BY idx"
        )
        .fetchnumpy()["node"]
        .astype(np.int64)
    )


def _block(con: duckdb.DuckDBPyConnection, model: Model) -> int:
    con.execute("CREATE OR REPLACE TABLE pairs (i BIGINT, j BIGINT)")
    for rule in model.blocking:
        if rule.builtin == "id_corrections":  # the model has an anchor (its validator)
            key = model.anchor.key
            loose = con.execute(
                f"SELECT idx, {key} AS key FROM rec WHERE NOT anchored AND "
                f"regexp_full_match({key}, '[0-9]{{17}}[0-9X]')"
            ).fetchnumpy()
            row, candidate = id_corrections(np.asarray(loose["key"], dtype=object))
            fixes = pa.table({"idx": loose["idx"][row], "key": candidate})
            con.register("fixes", fixes)
            con.execute(
                "INSERT INTO pairs SELECT f.idx, r.idx FROM fixes f JOIN rec r "
                f"ON r.{key} = f.key AND r.anchored"
            )
            con.unregister("fixes")
            continue
        con.execute(
            f"""
            INSERT INTO pairs
            WITH k AS (SELECT idx, anchored, ({rule.key}) AS key FROM rec WHERE ({rule.key}) IS NOT NULL)
            SELECT a.idx, b.idx FROM k a JOIN k b ON a.key = b.key
            WHERE NOT a.anchored AND (b.anchored OR a.idx < b.idx)
            """
        )
    con.execute(
        "CREATE OR REPLACE TABLE pairs AS SELECT DISTINCT least(i, j) AS i, greatest(i, j) AS j "
        "FROM pairs WHERE i <> j"
    )
    return con.execute("SELECT count(*) FROM pairs").fetchone()[0]


def _u(con: duckdb.DuckDBPyConnection, model: Model, n: int) -> dict[str, np.ndarray]:
    """u: level shares among random pairs of records (mostly different persons)."""
    rng = np.random.default_rng(model.seed)
    size = model.u_random_pairs
    i, j = rng.integers(0, max(n, 1), size), rng.integers(0, max(n, 1), size)
    keep = i != j
    con.register("random_pairs", pa.table({"i": i[keep], "j": j[keep]}))
    gammas = con.execute(
        f"SELECT {_gammas(model)} FROM random_pairs p JOIN rec l ON l.idx = p.i "
        "JOIN rec r ON r.idx = p.j"
    ).fetchnumpy()
    con.unregister("random_pairs")
    ones = np.ones(int(keep.sum()))
    return {
        k: level_shares(ones, np.asarray(gammas[f"g_{k}"], dtype=np.int64), len(c.levels))
        for k, c in model.comparisons.items()
    }


def _compare(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    cannot = " OR ".join(f"({rule.when})" for rule in model.cannot_link) or "false"
    con.execute(
        f"CREATE OR REPLACE TABLE compared AS SELECT p.i, p.j, {_gammas(model)}, "
        f"coalesce({cannot}, false) AS cannot "
        "FROM pairs p JOIN rec l ON l.idx = p.i JOIN rec r ON r.idx = p.j"
    )


def _match_probability(con: duckdb.DuckDBPyConnection, model: Model) -> float:
    """The share of pairs of anchored records that share their verified number: the chance
    that two random records are one person. The model's own without an anchor, or with fewer
    than `min_pairs` pairs of anchored records (in a household's few records every pair can be
    one person's)."""
    if model.anchor is None:
        return model.match_probability
    same, anchored = con.execute(
        "SELECT sum(n * (n - 1) / 2), sum(n) FROM "
        f"(SELECT count(*) AS n FROM rec WHERE anchored GROUP BY {model.anchor.key})"
    ).fetchone()
    anchored_pairs = float(anchored or 0) * (float(anchored or 0) - 1) / 2
    if not same or anchored_pairs < max(model.min_pairs, 1):
        return model.match_probability
    return float(same) / anchored_pairs


def _fit(con: duckdb.DuckDBPyConnection, model: Model, pairs: int, n: int) -> Parameters:
    """u from random pairs, m by EM; the model's prior when there is too little to fit."""
    prior = model.prior
    names = list(model.comparisons)
    if pairs < model.min_pairs:
        return Parameters(
            m=prior.m, u=prior.u, match_share=float("nan"),
            match_probability=_match_probability(con, model), iterations=0,
        )  # fmt: skip
    cols = ", ".join(f"g_{k}" for k in names)
    counts = con.execute(
        f"SELECT {cols}, count(*) AS n FROM compared GROUP BY ALL ORDER BY ALL"
    ).fetchnumpy()  # in one order: EM's sums then come out the same in every run
    patterns = np.column_stack([np.asarray(counts[f"g_{k}"], dtype=np.int64) for k in names])
    params = fit_em(
        patterns, np.asarray(counts["n"], dtype=float), _u(con, model, n), prior.m, model.em,
        _match_probability(con, model),
    )  # fmt: skip
    if model.anchor is None:  # no verified identifier: the matches EM found among all pairs
        everyone = max(n * (n - 1) / 2, 1)
        found = min(max(params.match_share * pairs / everyone, 1e-12), 0.5)
        params = params.model_copy(update={"match_probability": found})
    return params


def _score(con: duckdb.DuckDBPyConnection, model: Model, params: Parameters) -> None:
    """Each compared pair's match weight (log2 odds) and whether it is a match or cannot-link."""
    factors = params.log2_bayes_factors()
    terms, joins = [], {}
    for k, c in model.comparisons.items():
        cases = []
        for i, level in enumerate(c.levels):
            if level.term_frequency:
                col = level.term_frequency
                con.execute(
                    f"CREATE OR REPLACE TABLE tf_{col} AS SELECT {col} AS value, "
                    f"count(*) / (SELECT count(*) FROM rec WHERE {col} IS NOT NULL) AS share "
                    f"FROM rec WHERE {col} IS NOT NULL GROUP BY ALL"
                )
                joins[col] = (
                    f"LEFT JOIN rec tl_{col} ON tl_{col}.idx = c.i "
                    f"LEFT JOIN tf_{col} t_{col} ON t_{col}.value = tl_{col}.{col}"
                )
                # the name's own frequency as u: log2(m) - log2(share)
                cases.append(f"WHEN {i} THEN {np.log2(params.m[k][i])} - log2(t_{col}.share)")
            else:
                cases.append(f"WHEN {i} THEN {factors[k][i]}")
        terms.append(f"CASE g_{k} {' '.join(cases)} ELSE 0 END")
    prior = float(np.log2(params.match_probability / (1 - params.match_probability)))
    threshold = float(np.log2(model.threshold / (1 - model.threshold)))
    con.execute(
        f"CREATE OR REPLACE TABLE scored AS SELECT c.i, c.j, c.cannot, "
        f"{prior} + {' + '.join(terms)} AS weight FROM compared c {' '.join(joins.values())}"
    )
    con.execute(
        f"CREATE OR REPLACE TABLE edges AS SELECT i, j, weight, cannot FROM scored "
        f"WHERE cannot OR weight >= {threshold}"
    )


def _find(parent: np.ndarray, x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        parent[x], x = root, parent[x]
    return root


def cluster(nodes: np.ndarray, anchored: np.ndarray, edges: pd.DataFrame) -> tuple[np.ndarray, int]:
    """Cluster labels for the records: start from their nodes (records sharing a verified number),
    join the two ends of each match edge, strongest first (ties by record index), unless that
    would put two anchors or the two records of a cannot-link edge in one cluster.
    Returns the labels (each cluster's smallest record index) and the number of refused merges."""
    parent = nodes.copy()
    anchor = {int(x) for x in nodes[anchored]}  # roots holding a verified number
    forbidden: dict[int, set[int]] = {}
    for i, j in edges.loc[edges["cannot"], ["i", "j"]].itertuples(index=False):
        a, b = int(nodes[i]), int(nodes[j])
        forbidden.setdefault(a, set()).add(b)
        forbidden.setdefault(b, set()).add(a)
    matches = edges[~edges["cannot"]].sort_values(
        ["weight", "i", "j"], ascending=[False, True, True], kind="stable"
    )
    refused = 0
    for i, j in matches[["i", "j"]].itertuples(index=False):
        a, b = _find(parent, int(i)), _find(parent, int(j))
        if a == b:
            continue
        if (a in anchor and b in anchor) or any(
            _find(parent, x) == b for x in forbidden.get(a, ())
        ):
            refused += 1
            continue
        root, other = min(a, b), max(a, b)
        parent[other] = root
        if other in anchor:
            anchor.discard(other)
            anchor.add(root)
        if other in forbidden:
            forbidden.setdefault(root, set()).update(forbidden.pop(other))
    while True:  # every record to its root, whole array at a time
        up = parent[parent]
        if np.array_equal(up, parent):
            return parent, refused
        parent = up


def match(clean: pd.DataFrame, model: Model, timings: dict[str, float] | None = None) -> Result:
    """Cluster labels for cleaned person records (the model's columns; any may be null)."""
    timings = {} if timings is None else timings
    con = duckdb.connect()
    try:
        with _timed(timings, "anchor"):
            n = _load(con, clean, model)
            nodes = _nodes(con, model)
            anchored = con.execute("SELECT anchored FROM rec ORDER BY idx").fetchnumpy()
            anchored = np.asarray(anchored["anchored"], dtype=bool)
        with _timed(timings, "block"):
            pairs = _block(con, model)
        with _timed(timings, "compare"):
            _compare(con, model)
        with _timed(timings, "fit"):
            params = _fit(con, model, pairs, n)
        with _timed(timings, "score"):
            _score(con, model, params)
            edges = con.execute("SELECT i, j, weight, cannot FROM edges").df()
        with _timed(timings, "cluster"):
            labels, refused = cluster(nodes, anchored, edges)
            ids = con.execute("SELECT record_id FROM rec ORDER BY idx").fetchnumpy()["record_id"]
    finally:
        con.close()
    return Result(
        labels=pd.Series(labels, index=pd.Index(np.asarray(ids, dtype=object), name="record_id")),
        parameters=params,
        pairs=pairs,
        edges=int((~edges["cannot"]).sum()),
        refused=refused,
    )
