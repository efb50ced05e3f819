"""Stable person ids from clusters (docs/architecture.md, "Stable ids").

The registry maps each department record (source + record key) to a person id. A new
clustering keeps every id it can: a cluster takes the id of the earlier records it holds; when
it holds records of several ids they merge and the oldest (lowest number) survives; when an id's
records now fall in several clusters the part holding most of them keeps it (ties: the part
with the lowest cluster label, i.e. the first record in source and key order) and the others
take their own or new ids. Every merge and split is returned as an event, with its reason.
"""

from __future__ import annotations

import pandas as pd

EVENT_COLUMNS = ["kind", "person_id", "other_id", "records", "reason"]


def _number(person_id: str) -> int:
    return int(person_id[1:])


def stable_ids(
    clusters: pd.DataFrame, registry: pd.DataFrame, next_number: int
) -> tuple[pd.Series, pd.DataFrame, int]:
    """Person ids for clustered records.

    clusters: key, cluster (one row per record); registry: key, person_id (records seen before).
    Returns the person id per key (a Series indexed by key), the merge and split events, and
    the next unused id number."""
    known = clusters.merge(registry[["key", "person_id"]], on="key", how="left")
    held = known.dropna(subset=["person_id"])
    # per earlier id, its records in each cluster; the part with most of them keeps the id
    parts = held.groupby(["person_id", "cluster"]).size().rename("records").reset_index()
    parts["number"] = parts["person_id"].map(_number)
    parts = parts.sort_values(
        ["person_id", "records", "cluster"], ascending=[True, False, True], kind="stable"
    )
    keeper = parts.drop_duplicates("person_id")  # person_id -> the cluster that keeps it
    # per cluster, the ids it keeps: the oldest survives, the rest merge into it
    keeper = keeper.sort_values(["cluster", "number"], kind="stable")
    survivor = keeper.drop_duplicates("cluster").set_index("cluster")["person_id"]
    events = []
    for row in keeper[keeper.duplicated("cluster")].itertuples(index=False):
        events.append((
            "merge", survivor[row.cluster], row.person_id, int(row.records),
            "linked to the records of an older id: the older id survives",
        ))  # fmt: skip
    ids = clusters["cluster"].map(survivor)
    fresh = clusters.loc[ids.isna(), "cluster"].drop_duplicates()
    new = {c: f"P{next_number + i:08d}" for i, c in enumerate(sorted(fresh))}
    next_number += len(new)
    ids = ids.fillna(clusters["cluster"].map(new))
    moved = parts.merge(keeper[["person_id", "cluster"]], on="person_id", suffixes=("", "_kept"))
    for row in moved[moved["cluster"] != moved["cluster_kept"]].itertuples(index=False):
        events.append((
            "split", row.person_id, survivor.get(row.cluster, new.get(row.cluster)),
            int(row.records), "no longer linked to the larger part of its records",
        ))  # fmt: skip
    return (
        pd.Series(ids.to_numpy(), index=clusters["key"].to_numpy(), name="person_id"),
        pd.DataFrame(events, columns=EVENT_COLUMNS),
        next_number,
    )
