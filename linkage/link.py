"""The link stage: one stable person id for every department record of a person, and the core's
person history built from them.

Matching is the person linkage model (`match.py`, `schemas/linkage/person.yaml`) over every
staged person record of the period, one global step; ids come from the registry keyed by
(source, record_key) through `ids.stable_ids`, so a rerun or a later period keeps every id it
can, and each merge or split is logged in core.person_id_events (docs/architecture.md,
"Stable ids").
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pandas as pd

from onetable.linkage.ids import EVENT_COLUMNS, stable_ids
from onetable.linkage.match import match
from onetable.linkage.model import Model, load_model
from onetable.linkage.records import clean_records
from onetable.schemas.contracts import Contracts, Source
from onetable.schemas.deployment import Placement, Settings
from onetable.warehouse.ledger import insert_frame, transaction
from onetable.warehouse.periods import Period
from onetable.warehouse.store import StoreSettings, open_store

STAGE = "link"
IDENTITY = [
    "id_number", "name", "sex", "birth_date", "phone", "village_code", "residence_type",
    "standard_address", "registered_household_id",
]  # fmt: skip
NOT_REGISTERED = "流动人口"  # person.residence_type of a resident whose 户口 is not here
_TABLES = {
    "core.person_registry": "source VARCHAR, record_key VARCHAR, person_id VARCHAR, run_id VARCHAR, "
    "assigned_at TIMESTAMP",
    "core.person_period": "period VARCHAR, person_id VARCHAR, id_number VARCHAR, name VARCHAR, "
    "sex VARCHAR, birth_date DATE, phone VARCHAR, village_code VARCHAR, residence_type VARCHAR, "
    "active BOOLEAN, inactive_reason VARCHAR, records INTEGER, sources VARCHAR[]",
    "core.group_period": 'period VARCHAR, person_id VARCHAR, "group" VARCHAR, source VARCHAR',
    "core.person_id_events": "run_id VARCHAR, logged_at TIMESTAMP, kind VARCHAR, person_id VARCHAR, "
    "other_id VARCHAR, records INTEGER, reason VARCHAR",
    "core.person": "person_id VARCHAR, id_number VARCHAR, name VARCHAR, sex VARCHAR, "
    "birth_date DATE, village_code VARCHAR, residence_type VARCHAR, active BOOLEAN, "
    "valid_from DATE, valid_to DATE, recorded_at TIMESTAMP",
}


_NAMES_A_PERSON = frozenset({"id_number", "name"})


def _person_roles(source: Source) -> list[str | None]:
    """The persons each row of a source names: None for the row's own person (it maps an ID
    number or a name to `person`), then each person role that maps one."""
    named = {t.role for _, _, t in source.mappings()
             if t.entity == "person" and t.column in _NAMES_A_PERSON}  # fmt: skip
    return [r for r in (None, *source.roles) if r in named]


def person_sources(contracts: Contracts) -> list[Source]:
    """Sources whose records describe a person (they map an ID number or a name to one, or to a
    person role)."""
    return [s for s in contracts.sources.values() if _person_roles(s)]


def _staged(
    con: duckdb.DuckDBPyConnection, source: Source, period: Period, steps: list[Placement]
) -> pd.DataFrame:
    """The person records of a source's staged rows: one per row for the row's own person, one
    per row and person role (record key `<key>#<role>`) where the role's columns name someone.
    `_resident` says whether the record is evidence that the person lives here: a role's says
    what the mapping's `resident` says, the row's own person's is true. `_place_<i>` is the
    record's value for placement step `i` when the step is this source's (else null)."""
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'staging' AND table_name = ?", [source.source]).fetchall()}  # fmt: skip
    if not have:
        return pd.DataFrame()
    selects = []
    for role in _person_roles(source):
        prefix = f"{role}__" if role else ""

        def col(c: str, prefix: str = prefix) -> str:
            return f'"{prefix}{c}" AS "{c}"' if prefix + c in have else f'NULL::VARCHAR AS "{c}"'

        if role is None:
            key, flags, resident, where = "_record_key", "_flags", "true", ""
            group = col("group")
        else:
            key = f"_record_key || '#{role}'"
            # the role's flags, named as the row's own person's are (id_number:id_upgraded_15)
            flags = (
                f"list_transform(list_filter(_flags, f -> starts_with(f, '{prefix}')), "
                f"f -> f[{len(prefix) + 1}:])"
            )
            resident = "true" if source.roles[role].resident else "false"
            named = [f'"{prefix}{c}" IS NOT NULL' for c in _NAMES_A_PERSON if prefix + c in have]
            where, group = f"AND ({' OR '.join(named)})", 'NULL AS "group"'
        places = [
            col(step.column).replace(f'AS "{step.column}"', f"AS _place_{i}")
            if step.source == source.source
            else f"NULL::VARCHAR AS _place_{i}"
            for i, step in enumerate(steps)
        ]
        selects.append(
            f"SELECT _source, {key} AS _record_key, _window_end, _ended, {flags} AS _flags, "
            f"{resident} AS _resident, {', '.join(col(c) for c in IDENTITY)}, "
            f"{', '.join([group, *places])} "
            f'FROM staging."{source.source}" WHERE _period = $period {where}'
        )
    return con.execute(" UNION ALL BY NAME ".join(selects), {"period": str(period)}).df()


def placement_steps(contracts: Contracts, settings: Settings) -> list[Placement]:
    """The deployment's placement precedence; when it declares none, every person source's
    village code, sources in name order (declare it: the order is the county's to choose)."""
    if settings.placement:
        return list(settings.placement)
    return [
        Placement(source=s.source)
        for s in sorted(person_sources(contracts), key=lambda s: s.source)
        if any(t.column == "village_code" and t.role is None for _, _, t in s.mappings())
    ]


def _key(records: pd.DataFrame) -> pd.Series:
    return records["_source"] + "\x1f" + records["_record_key"]


def link_ids(
    records: pd.DataFrame, registry: pd.DataFrame, next_number: int, model: Model
) -> tuple[pd.Series, pd.DataFrame, int]:
    """Person ids for staged records (`_source`, `_record_key`, `_flags`, IDENTITY): matched by
    the model, then kept stable through the registry (source, record_key, person_id).
    Returns the ids (aligned with records), the merge and split events, the next id number."""
    raw = pd.DataFrame({
        "record_id": _key(records), "source": records["_source"],
        "name": records["name"], "sex": records["sex"], "birth_date": records["birth_date"],
        "id_number": records["id_number"], "phone": records["phone"],
        "address": records["standard_address"].fillna(records["village_code"]),
        "household": records["registered_household_id"],
    })  # fmt: skip
    clean = clean_records(raw.astype(object).where(raw.notna(), None))
    # staging already upgraded 15-digit numbers: its flags still say which ones were
    upgraded = records["_flags"].map(
        lambda f: any(x.startswith("id_number:id_upgraded") for x in f)
    )
    clean["id_valid"] &= ~upgraded.to_numpy()
    labels = match(clean, model).labels
    clusters = pd.DataFrame({"key": labels.index, "cluster": labels.to_numpy()})
    registry = pd.DataFrame({
        "key": registry["source"] + "\x1f" + registry["record_key"], "person_id": registry["person_id"]
    })  # fmt: skip
    ids, events, next_number = stable_ids(clusters, registry, next_number)
    return pd.Series(ids[_key(records)].to_numpy(), index=records.index), events, next_number


def place(records: pd.DataFrame, steps: list[Placement]) -> pd.Series:
    """Each person's village (index person_id): the first placement step any of their records
    gives, within a step the record seen last (then source and record key, so ties are
    deterministic), never a vote. A village code the division registry does not hold, or no code
    at all (flagged in staging), places no one: the person falls to the next step or is unplaced.
    Nor does a non-resident record (a landlord's): it says who they are, not where they live."""
    placed = pd.Series(dtype=object)
    ordered = records.sort_values(
        ["_window_end", "_source", "_record_key"], ascending=[False, True, True]
    )
    for i, step in enumerate(steps):
        unplacing = {f"{step.column}:unknown_code", f"{step.column}:malformed_code"}
        usable = (
            ordered[f"_place_{i}"].notna()
            & ordered["_flags"].map(unplacing.isdisjoint)
            & ordered["_resident"].astype(bool)
        )
        first = ordered[usable].drop_duplicates("person_id").set_index("person_id")[f"_place_{i}"]
        placed = pd.concat([placed, first[~first.index.isin(placed.index)]])
    return placed


def activity(
    records: pd.DataFrame, settings: Settings, period: Period, seen: pd.Series
) -> pd.DataFrame:
    """Per person (index person_id): `active`, and for an inactive person the reason. A person is
    active while a record of theirs is not ended, is from a residence source (all sources when the
    deployment names none), is not a non-resident role's and, with `gone_after_periods`, was seen (`seen`: per record, the end
    of the last window that showed it) in one of the last that many periods."""
    resident = (
        records["_source"].isin(settings.residence_sources)
        if settings.residence_sources is not None
        else pd.Series(True, index=records.index)
    )
    # a record of a role that does not live here (a landlord) is not evidence of living here
    resident &= records["_resident"].astype(bool)
    live = ~records["_ended"].astype(bool)
    frame = pd.DataFrame({
        "person_id": records["person_id"], "live": live, "resident": resident,
        "live_resident": live & resident, "seen": seen,
    }).groupby("person_id").agg(
        live=("live", "any"), resident=("resident", "any"), active=("live_resident", "any"),
        seen=("seen", "max"),
    )  # fmt: skip
    frame["reason"] = None
    frame.loc[~frame["live"], "reason"] = "every record ended (a status, an end date, a list left)"
    frame.loc[frame["live"] & ~frame["resident"], "reason"] = "no record in a residence source"
    frame.loc[frame["live"] & frame["resident"] & ~frame["active"], "reason"] = (
        "every residence-source record ended"
    )
    if settings.gone_after_periods:
        horizon = period.shift(-(settings.gone_after_periods - 1)).start
        gone = frame["active"] & (frame["seen"] <= horizon)
        frame.loc[gone, "active"] = False
        frame.loc[gone, "reason"] = [
            f"seen in no source for {settings.gone_after_periods} periods (last {s:%Y-%m-%d})"
            for s in frame.loc[gone, "seen"] - pd.Timedelta(days=1)
        ]
    return frame[["active", "reason"]]


def _golden(
    records: pd.DataFrame, period: Period, villages: pd.Series, active: pd.DataFrame
) -> pd.DataFrame:
    """One row per person for the period: each attribute the most common value among the
    person's records that are not ended (an ended record's values are those of before: a 迁出
    record's 户籍人口), else among all; the village of `place` and the activity of `activity`.
    An active person no record gives a residence type (a tenant, a health archive) is 流动人口."""

    def mode(values: pd.Series) -> str | None:
        values = values.dropna()
        return values.mode().iloc[0] if len(values) else None

    attributes = ["id_number", "name", "sex", "birth_date", "phone", "residence_type"]
    grouped = records.groupby("person_id")
    current = records[~records["_ended"].astype(bool)].groupby("person_id")[attributes].agg(mode)
    golden = current.combine_first(grouped[attributes].agg(mode))[attributes]
    golden.insert(5, "village_code", villages.reindex(golden.index))
    golden["active"] = active["active"].reindex(golden.index)
    # 实有人口 is 户籍人口 and 流动人口: a resident no record calls either is not registered here
    golden.loc[golden["active"].eq(True) & golden["residence_type"].isna(), "residence_type"] = (
        NOT_REGISTERED
    )
    golden["inactive_reason"] = active["reason"].reindex(golden.index)
    golden["records"] = grouped.size()
    golden["sources"] = grouped["_source"].agg(lambda s: sorted(set(s)))
    golden = golden.reset_index()
    golden.insert(0, "period", str(period))
    golden["birth_date"] = pd.to_datetime(golden["birth_date"], errors="coerce").dt.date
    return golden


def _seen(
    con: duckdb.DuckDBPyConnection, contracts: Contracts, records: pd.DataFrame, period: Period
) -> pd.Series:
    """When each record was last shown: a snapshot source shows every record it holds in each
    delivery (its last window by the period's end), a cursor source a record when it changes."""
    last = dict(con.execute(
        "SELECT source, max(window_end) FROM meta.windows WHERE window_end <= ? GROUP BY source",
        [period.end]).fetchall())  # fmt: skip
    snapshot = (
        records["_source"].map(lambda s: contracts.sources[s].read.mode == "snapshot").astype(bool)
    )
    return records["_window_end"].where(~snapshot, records["_source"].map(last))


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


def link(
    settings: StoreSettings, contracts: Contracts, period: Period, run_id: str,
    deployment: Settings | None = None,
) -> dict:  # fmt: skip
    """Give every staged person record of the period its person id; build the core's persons,
    placed and made active by the deployment's settings (`deployment`; the defaults without)."""
    deployment = deployment or Settings()
    steps = placement_steps(contracts, deployment)
    now = datetime.now(UTC).replace(tzinfo=None)
    with open_store(settings) as con, transaction(con, run_id=run_id, stage=STAGE) as tx:
        for table, columns in _TABLES.items():
            con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
        frames = [f for s in person_sources(contracts) if len(f := _staged(con, s, period, steps))]
        if not frames:
            return {"records": 0, "persons": 0, "new_ids": 0, "groups": 0, "unlinked": 0}
        # a fixed order, so that the same records get the same new ids in any store
        records = pd.concat(frames, ignore_index=True).sort_values(
            ["_source", "_record_key"], ignore_index=True
        )
        # a relative's number (a newborn's records under its mother's) is not the person's
        another = records["_flags"].map(lambda f: "id_number:id_of_another" in f).astype(bool)
        records.loc[another, "id_number"] = None
        # A record with an ID number or a name is a person's: a grid entry or a tenant with a
        # name and a phone links where they agree with others, else is a person of its own. A
        # record naming no one stays in staging, unlinked and counted.
        identifiable = records["id_number"].notna() | records["name"].notna()
        unlinked = int((~identifiable).sum())
        records = records[identifiable].reset_index(drop=True)
        registry = con.execute(
            "SELECT source, record_key, person_id FROM core.person_registry"
        ).df()
        (top,) = con.execute(
            "SELECT coalesce(max(CAST(substr(person_id, 2) AS BIGINT)), 0) FROM core.person_registry"
        ).fetchone()
        records["person_id"], events, _ = link_ids(records, registry, int(top) + 1, load_model())
        keys = registry["source"] + "\x1f" + registry["record_key"]
        known = dict(zip(keys, registry["person_id"], strict=True))
        changed = records[_key(records).map(known) != records["person_id"]]
        changed = changed[["_source", "_record_key", "person_id"]].rename(
            columns={"_source": "source", "_record_key": "record_key"}
        )
        _changed_keys = changed[["source", "record_key"]]  # a replacement scan: nothing held
        con.execute(
            "DELETE FROM core.person_registry r USING _changed_keys c "
            "WHERE r.source = c.source AND r.record_key = c.record_key"
        )
        insert_frame(con, "core.person_registry", changed.assign(run_id=run_id, assigned_at=now))
        if len(events):
            insert_frame(
                con,
                "core.person_id_events",
                events.assign(run_id=run_id, logged_at=now)[
                    ["run_id", "logged_at", *EVENT_COLUMNS]
                ],
            )
        seen = _seen(con, contracts, records, period)
        golden = _golden(
            records, period, place(records, steps), activity(records, deployment, period, seen)
        )
        _replace_period(con, "core.person_period", golden, period)
        # a split cell's groups are a list: one row per (person, group)
        groups = records[["person_id", "group", "_source", "_ended"]].explode("group")
        groups = groups[groups["group"].notna() & ~groups["_ended"].astype(bool)]
        groups = (
            groups[["person_id", "group", "_source"]]
            .drop_duplicates()
            .rename(columns={"_source": "source"})
        )
        groups.insert(0, "period", str(period))
        _replace_period(con, "core.group_period", groups, period)
        _rebuild_history(con, now)
        # the records linked, as the registry now holds them: one left without an id fails this
        _linked = records[["_source", "_record_key"]]  # a replacement scan: nothing held
        (kept,) = con.execute(
            "SELECT count(*) FROM _linked k JOIN core.person_registry r "
            "ON r.source = k._source AND r.record_key = k._record_key AND r.person_id IS NOT NULL"
        ).fetchone()
        tx.account("persons", read=len(records), kept=kept, quarantined=0)
    return {
        "records": len(records),
        "persons": int(golden["active"].sum()),
        "new_ids": len(changed),
        "merges": int((events["kind"] == "merge").sum()),
        "splits": int((events["kind"] == "split").sum()),
        "groups": len(groups),
        "unlinked": unlinked,
    }
