"""The link stage: one stable person id for every department record of a person, and the core's
person history built from them.

The matching here is the walking pipeline's first real one: a valid ID number shared with a
known person, else the same name and birth date as exactly one known person, else a new person
(records of new persons grouped the same way); names are compared by their pinyin. Ids live in a
registry keyed by (source, record_key): a rerun or a later period never changes an id once given
(DESIGN.md, "Runs, windows and ids"). The person-linkage issue replaces the matching, not the
registry.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pandas as pd

from onetable.linkage.standardize import pinyin_key
from onetable.schemas.contracts import Contracts, Source
from onetable.schemas.rules import id_birth_date
from onetable.warehouse.ledger import insert_frame, transaction
from onetable.warehouse.periods import Period
from onetable.warehouse.store import StoreSettings, open_store

STAGE = "link"
IDENTITY = ["id_number", "name", "sex", "birth_date", "phone", "village_code", "residence_type"]
_TABLES = {
    "core.person_registry": "source VARCHAR, record_key VARCHAR, person_id VARCHAR, run_id VARCHAR, "
    "assigned_at TIMESTAMP",
    "core.person_period": "period VARCHAR, person_id VARCHAR, id_number VARCHAR, name VARCHAR, "
    "sex VARCHAR, birth_date DATE, phone VARCHAR, village_code VARCHAR, residence_type VARCHAR, "
    "active BOOLEAN, records INTEGER, sources VARCHAR[]",
    "core.group_period": 'period VARCHAR, person_id VARCHAR, "group" VARCHAR, source VARCHAR',
    "core.person": "person_id VARCHAR, id_number VARCHAR, name VARCHAR, sex VARCHAR, "
    "birth_date DATE, village_code VARCHAR, residence_type VARCHAR, active BOOLEAN, "
    "valid_from DATE, valid_to DATE, recorded_at TIMESTAMP",
}


def person_sources(contracts: Contracts) -> list[Source]:
    """Sources whose records describe a person (they map an ID number or a name to one)."""
    return [
        s for s in contracts.sources.values()
        if {s.target(c) for c in s.columns} & {("person", "id_number"), ("person", "name")}
    ]  # fmt: skip


def _staged(con: duckdb.DuckDBPyConnection, source: Source, period: Period) -> pd.DataFrame:
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'staging' AND table_name = ?", [source.source]).fetchall()}  # fmt: skip
    if not have:
        return pd.DataFrame()
    cols = [f'"{c}"' if c in have else f'NULL::VARCHAR AS "{c}"' for c in IDENTITY]
    group_sql = '"group"' if "group" in have else 'NULL::VARCHAR AS "group"'
    return con.execute(
        f"SELECT _source, _record_key, _ended, _flags, {', '.join(cols)}, {group_sql} "
        f'FROM staging."{source.source}" WHERE _period = ?',
        [str(period)],
    ).df()


def _id_birth_date(id_number: object) -> str | None:
    if not isinstance(id_number, str):
        return None
    born = id_birth_date(id_number)
    return born.isoformat() if born else None


def assign_ids(
    records: pd.DataFrame, registry: pd.DataFrame, next_number: int
) -> tuple[pd.DataFrame, int]:
    """Person ids for records: the registry's for known records, a match for new ones, else new
    ids. Returns the records with `person_id` and `new` (not yet in the registry)."""
    records = records.merge(
        registry.rename(columns={"source": "_source", "record_key": "_record_key"})[
            ["_source", "_record_key", "person_id"]
        ],
        on=["_source", "_record_key"],
        how="left",
    )
    records["new"] = records["person_id"].isna()
    ok_id = records["id_number"].notna() & ~records["_flags"].map(
        lambda flags: any(f.startswith("id_number:id_bad") for f in flags)
    )
    known = records[~records["new"]]
    by_id = dict(zip(known.loc[ok_id, "id_number"], known.loc[ok_id, "person_id"], strict=True))
    # the name's sound, not its characters: a homophone typo (同音字) still meets its person
    sounds = {n: pinyin_key(n) for n in records["name"].dropna().unique()}
    # a record without a birth date (a tenant list) still has the one in its ID number
    born = records["birth_date"].fillna(records["id_number"].map(_id_birth_date))
    dob_key = records["name"].map(sounds).fillna("") + "|" + born.fillna("")
    has_dob = records["name"].notna() & born.notna()
    known_dob = known[has_dob[known.index]]
    per_key = known_dob.groupby(dob_key[known_dob.index])["person_id"].unique()
    by_dob = {k: v[0] for k, v in per_key.items() if len(v) == 1}
    fresh: dict[str, str] = {}
    # records with a valid ID number first: a record without one then meets every person
    new = records.index[records["new"]]
    for i in [*new[ok_id[new]], *new[~ok_id[new]]]:
        id_number, key = records.at[i, "id_number"], dob_key[i]
        if ok_id[i] and id_number in by_id:
            person = by_id[id_number]
        elif has_dob[i] and key in by_dob and not ok_id[i]:
            # a valid ID number of its own is a person of its own: namesakes born the same day
            # (twins among them) are never merged by name
            person = by_dob[key]
        else:
            group_key = f"id:{id_number}" if ok_id[i] else f"nd:{key}" if has_dob[i] else f"rec:{i}"
            person = fresh.get(group_key)
            if person is None:
                person = f"P{next_number:08d}"
                next_number += 1
                fresh[group_key] = person
            if ok_id[i]:
                by_id[id_number] = person
            if has_dob[i]:
                by_dob.setdefault(key, person)
        records.at[i, "person_id"] = person
    return records, next_number


def _golden(records: pd.DataFrame, period: Period) -> pd.DataFrame:
    """One row per person for the period: the most common value of each attribute among the
    person's records, active while any of its records is not ended."""

    def mode(values: pd.Series) -> str | None:
        values = values.dropna()
        return values.mode().iloc[0] if len(values) else None

    grouped = records.groupby("person_id")
    golden = grouped[
        ["id_number", "name", "sex", "birth_date", "phone", "village_code", "residence_type"]
    ].agg(mode)
    golden["active"] = grouped["_ended"].agg(lambda e: bool((~e.astype(bool)).any()))
    golden["records"] = grouped.size()
    golden["sources"] = grouped["_source"].agg(lambda s: sorted(set(s)))
    golden = golden.reset_index()
    golden.insert(0, "period", str(period))
    golden["birth_date"] = pd.to_datetime(golden["birth_date"], errors="coerce").dt.date
    return golden


def _replace_period(
    con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, period: Period
) -> None:
    con.execute(f"DELETE FROM {table} WHERE period = ?", [str(period)])
    insert_frame(con, table, frame)


def _rebuild_history(con: duckdb.DuckDBPyConnection, recorded_at: datetime) -> None:
    """core.person as business-time intervals: consecutive periods with the same attributes are
    one row, valid from the first period's start to the next change (null while current)."""
    con.execute("DELETE FROM core.person")
    con.execute(
        """
        INSERT INTO core.person
        WITH p AS (
            SELECT *, strptime(period || '-01', '%Y-%m-%d')::DATE AS starts,
                   md5(concat_ws('|', id_number, name, sex, birth_date, village_code, residence_type, active)) AS h
            FROM core.person_period),
        marked AS (
            SELECT *, CASE WHEN h IS DISTINCT FROM lag(h) OVER w THEN 1 ELSE 0 END AS change
            FROM p WINDOW w AS (PARTITION BY person_id ORDER BY starts)),
        islands AS (SELECT *, sum(change) OVER (PARTITION BY person_id ORDER BY starts) AS island FROM marked),
        versions AS (
            SELECT person_id, island, any_value(id_number) AS id_number, any_value(name) AS name,
                   any_value(sex) AS sex, any_value(birth_date) AS birth_date,
                   any_value(village_code) AS village_code, any_value(residence_type) AS residence_type,
                   any_value(active) AS active, min(starts) AS valid_from
            FROM islands GROUP BY person_id, island)
        SELECT person_id, id_number, name, sex, birth_date, village_code, residence_type, active,
               valid_from, lead(valid_from) OVER (PARTITION BY person_id ORDER BY valid_from), ?
        FROM versions
        """,
        [recorded_at],
    )


def link(settings: StoreSettings, contracts: Contracts, period: Period, run_id: str) -> dict:
    """Give every staged person record of the period its person id; build the core's persons."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with open_store(settings) as con, transaction(con, run_id=run_id, stage=STAGE) as tx:
        for table, columns in _TABLES.items():
            con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
        frames = [f for s in person_sources(contracts) if len(f := _staged(con, s, period))]
        if not frames:
            return {"records": 0, "persons": 0, "new_ids": 0, "groups": 0, "unlinked": 0}
        # a fixed order, so that the same records get the same new ids in any store
        records = pd.concat(frames, ignore_index=True).sort_values(
            ["_source", "_record_key"], ignore_index=True
        )
        # A record names a person only with an ID number, or a name and a birth date: a key
        # place's contact (a name and a phone) stays in staging, unlinked and counted.
        identifiable = records["id_number"].notna() | (
            records["name"].notna() & records["birth_date"].notna()
        )
        unlinked = int((~identifiable).sum())
        records = records[identifiable].reset_index(drop=True)
        registry = con.execute(
            "SELECT source, record_key, person_id FROM core.person_registry"
        ).df()
        (top,) = con.execute(
            "SELECT coalesce(max(CAST(substr(person_id, 2) AS BIGINT)), 0) FROM core.person_registry"
        ).fetchone()
        records, _ = assign_ids(records, registry, int(top) + 1)
        new = records[records["new"]][["_source", "_record_key", "person_id"]].drop_duplicates(
            ["_source", "_record_key"]
        )
        new = new.rename(columns={"_source": "source", "_record_key": "record_key"}).assign(
            run_id=run_id, assigned_at=now
        )
        insert_frame(con, "core.person_registry", new)
        golden = _golden(records, period)
        _replace_period(con, "core.person_period", golden, period)
        groups = records[records["group"].notna() & ~records["_ended"].astype(bool)]
        groups = (
            groups[["person_id", "group", "_source"]]
            .drop_duplicates()
            .rename(columns={"_source": "source"})
        )
        groups.insert(0, "period", str(period))
        _replace_period(con, "core.group_period", groups, period)
        _rebuild_history(con, now)
        tx.account("persons", read=len(records), kept=len(records), quarantined=0)
    return {
        "records": len(records),
        "persons": int(golden["active"].sum()),
        "new_ids": len(new),
        "groups": len(groups),
        "unlinked": unlinked,
    }
