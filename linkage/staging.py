"""The standardize stage: each source's landed records, as of the period's end, in canonical
columns with standardized values and the flags their checks raised (bad values flagged, not
dropped). One row per department record: the latest version it had by the period's end. A
village code is checked against the division registry the contracts name."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import duckdb
import pandas as pd

from onetable.connectors.landing import landed_columns, latest_rows_sql
from onetable.linkage import standardize as st
from onetable.schemas.contracts import (
    CodeTable,
    ContractError,
    Contracts,
    Mapping,
    MapUnknown,
    Source,
    derived_sql,
    quote,
)
from onetable.schemas.divisions import (
    VillageCodes,
    VillageNames,
    registry,
    village_codes,
    village_names,
)
from onetable.warehouse.ledger import QuarantineRecord, insert_frame, tables, transaction
from onetable.warehouse.periods import Period
from onetable.warehouse.store import StoreSettings, open_store

STAGE = "standardize"
_META = ["_period", "_source", "_record_key", "_window_end", "_ended"]


def converter(
    mapping: Mapping,
    codes: dict[str, CodeTable] | None = None,
    names: VillageNames | None = None,
) -> Callable[[str | None], st.Result]:
    """The standardizer a mapping's `convert` names (`code` with its code table's synonyms,
    `address_village` with the registry's village names)."""
    match mapping.convert:
        case "id_number":
            return st.id_number
        case "credit_code":
            return st.credit_code
        case "name":
            return st.name
        case "date":
            formats = tuple(mapping.formats)
            return lambda raw: st.parse_date(raw, formats)
        case "phone":
            return st.phone
        case "integer":
            return st.integer
        case "address_village":
            if names is None:
                raise ContractError(f"{mapping.to}: `convert: address_village` needs village names")
            return lambda raw: st.address_village(raw, names.village_of)
        case "code":
            table = (codes or {})[mapping.table].lookup() if mapping.table else None
            return lambda raw: st.code(raw, mapping.values, table)
        case _:
            return st.text


def village_checked(
    convert: Callable[[str | None], st.Result], villages: VillageCodes
) -> Callable[[str | None], st.Result]:
    """`convert`, then the village code it gives checked against the registry, whatever the
    mapping's conversion (a department's own village numbers mapped to codes by `code`)."""

    def checked(raw: str | None) -> st.Result:
        value, flags = convert(raw)
        code, more = st.village_code(value, villages.knows)
        return code, (*flags, *more)

    return checked


Cell = tuple[str | list[str] | None, tuple[str, ...], tuple[str, ...]]


def cell_converter(
    mapping: Mapping, convert: Callable[[str | None], st.Result]
) -> Callable[[str | None], Cell]:
    """A cell's staged value, its flags and its unknown codes: with `split`, each value between
    the separators converted (the staged value a list of the distinct ones, None when none is
    left); an unknown code mapped when `unknown: {map: ...}` says so, still flagged."""
    separators = re.compile(f"[{re.escape(mapping.split)}]") if mapping.split else None
    fallback = mapping.unknown.map if isinstance(mapping.unknown, MapUnknown) else None

    def cell(raw: str | None) -> Cell:
        parts = [raw] if separators is None or raw is None else separators.split(raw)
        values, flags, unknown = [], [], []
        for part in parts:
            value, found = convert(part)
            if "code_unknown" in found and value is not None:
                unknown.append(value)
                value = fallback or value
            values.append(value)
            flags.extend(found)
        flags_ = tuple(dict.fromkeys(flags))
        if separators is None:
            return values[0], flags_, tuple(unknown)
        kept = list(dict.fromkeys(v for v in values if v is not None))
        return kept or None, flags_, tuple(unknown)

    return cell


def staged_columns(source: Source) -> dict[str, str]:
    """The staged columns of a source (canonical names, `role__column` for a role's) in mapping
    order, each with its type: VARCHAR[] for a mapping that splits a cell, else VARCHAR."""
    out = {t.staged: "VARCHAR[]" if m.split else "VARCHAR" for _, m, t in source.mappings()}
    for target in source.constants:
        out.setdefault(source.target_of(target).staged, "VARCHAR")
    return out


def state_sql(source: Source, period: Period) -> str:
    """Each record's latest landed version by the period's end; a record a snapshot no longer
    holds is gone, a record whose status column ends it (注销, 迁出) stays, marked ended."""
    return (
        f"SELECT * FROM ({latest_rows_sql(source, before=period.end)}) "
        "QUALIFY row_number() OVER (PARTITION BY _record_key "
        "ORDER BY _window_end DESC, _row DESC NULLS FIRST) = 1"
    )


def rows_sql(source: Source, period: Period, landed: set[str]) -> str:
    """The period's records with the source's derived columns computed over them; a declared
    column the department did not send is null (so an expression over it gives null, or what
    it makes of a null)."""
    clash = sorted(set(source.derived) & landed)
    if clash:
        raise ContractError(
            f"source {source.source}: derived column(s) {', '.join(clash)} are also columns the "
            "department sends; give them names of their own in the mapping's `derived`"
        )
    missing = [c for c in source.declared_columns() if c not in landed]
    nulls = "".join(f", NULL::VARCHAR AS {quote(c)}" for c in missing)
    derived = "".join(f", {derived_sql(e)} AS {quote(d)}" for d, e in source.derived.items())
    rows = f"SELECT *{nulls} FROM ({state_sql(source, period)}) WHERE _op <> 'delete'"
    return f"SELECT *{derived} FROM ({rows})"


def _ended_on(source: Source, frame: pd.DataFrame, period: Period) -> tuple[pd.Series, list]:
    """Which records' end date (`ended_on`) is on or before the period's reference date, and the
    flags of end dates that are no date (a date still to come ends nothing yet)."""
    ended = pd.Series(False, index=frame.index)
    flags: list[tuple[str, ...]] = [()] * len(frame)
    if source.ended_on is None or source.ended_on.column not in frame:
        return ended, flags
    formats, as_of = tuple(source.ended_on.formats), period.reference_date.isoformat()
    column = frame[source.ended_on.column].astype(object)
    raw = column.where(column.notna(), None)  # a null is None, not NaN
    results = {v: st.parse_date(v, formats) for v in pd.unique(raw) if v is not None}
    for i, v in enumerate(raw):
        if v is None:
            continue
        day, found = results[v]
        ended.iloc[i] = day is not None and day <= as_of
        flags[i] = tuple(f"ended_on:{f}" for f in found if f != "date_implausible")
    return ended, flags


def standardize_source(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    period: Period,
    villages: VillageCodes,
    codes: dict[str, CodeTable] | None = None,
    names: VillageNames | None = None,
) -> pd.DataFrame:
    """The staging rows of one source for one period, with `_unknown`: per row, the (source
    column, mapping, code) of each code a mapping with `unknown: quarantine` did not know (such
    a row is quarantined, not staged)."""
    landed = set(landed_columns(con, source))
    frame = con.execute(rows_sql(source, period, landed)).df()
    present = landed | set(source.derived)
    ended, end_flags = _ended_on(source, frame, period)
    out = pd.DataFrame({
        "_period": str(period),
        "_source": source.source,
        "_record_key": frame["_record_key"],
        "_window_end": frame["_window_end"],
        "_ended": frame["_deleted"].astype(bool) | ended,
    })  # fmt: skip
    flags: list[list[str]] = [list(f) for f in end_flags]
    unknown: list[list[tuple[str, Mapping, str]]] = [[] for _ in range(len(frame))]
    for src_col, mapping, target in source.mappings():
        column = target.staged
        if src_col not in present:
            out[column] = None
            continue
        convert = converter(mapping, codes, names)
        if target.column == "village_code":
            convert = village_checked(convert, villages)
        cell = cell_converter(mapping, convert)
        raw = frame[src_col].astype(object).where(frame[src_col].notna(), None)
        results = {v: cell(v) for v in pd.unique(raw)}  # distinct values only
        out[column] = [results[v][0] for v in raw]
        for i, v in enumerate(raw):
            value, found, codes_unknown = results[v]
            flags[i].extend(f"{column}:{f}" for f in found)
            if mapping.unknown == "quarantine":
                unknown[i].extend((src_col, mapping, c) for c in codes_unknown)
    for i, found in enumerate(consistency_flags(out)):
        flags[i].extend(found)
    for target, value in source.constants.items():
        out[source.target_of(target).staged] = value
    out["_flags"] = flags
    out["_unknown"] = unknown
    return out


def shown_code(code: str) -> str:
    """A code as a quarantine reason may show it: a code is not personal data, but a long or
    digits-only value may be free text or a number, so only its length is shown."""
    return repr(code) if len(code) <= 20 and not code.isdigit() else f"of {len(code)} characters"


def unknown_code_records(
    source: Source, period: Period, frame: pd.DataFrame
) -> list[QuarantineRecord]:
    """One quarantine row per record and column with codes its mapping does not know."""
    records = []
    for key, found in zip(frame["_record_key"], frame["_unknown"], strict=True):
        by_target: dict[str, tuple[str, Mapping, list[str]]] = {}  # a target has one mapping
        for src_col, mapping, code in found:
            by_target.setdefault(mapping.to, (src_col, mapping, []))[2].append(code)
        for src_col, mapping, found_codes in by_target.values():
            target = source.target_of(mapping.to)
            table = f" (code table {mapping.table})" if mapping.table else ""
            shown = ", ".join(shown_code(c) for c in found_codes)
            records.append(QuarantineRecord(
                source=source.source, rule_id=f"{target.entity}.{target.column}.unknown_code",
                reason=f"source {source.source}, record {key}, column {src_col}: code {shown} "
                       f"is not in the mapping's codes{table}; the mapping says "
                       "`unknown: quarantine`",
                raw=None, field=src_col, location=f'landing."{source.source}" record {key}',
                window_start=period.start, window_end=period.end,
            ))  # fmt: skip
    return records


def consistency_flags(staged: pd.DataFrame) -> list[tuple[str, ...]]:
    """Per row, where the stated birth date or sex disagrees with the ID number's: flagged,
    the values kept (a row without an ID number column has nothing to compare, and a source
    without a birth date or sex column states none)."""
    if "id_number" not in staged:
        return [()] * len(staged)
    empty = [None] * len(staged)  # not a Series of None: pandas fills that with NaN, a value
    stated = (staged.get("birth_date", empty), staged.get("sex", empty))
    rows = zip(staged["id_number"], *stated, strict=True)
    return [
        tuple(
            f"id_number:{f}"
            for f in st.id_consistency(
                number, born, st.sex(sex)[0] if isinstance(sex, str) else None
            )
        )
        for number, born, sex in rows
    ]


_ADDRESS_UNPLACED = frozenset(
    f"village_code:{f}" for f in ("village_not_named", "village_ambiguous", "village_outside")
)


def village_code_counts(staged: pd.DataFrame) -> dict:
    """The village codes of staged rows the registry does not hold, with their records (a code is
    not personal data: the run summary shows it), the count of values that are no code at
    all (those could be anything, so they are counted, never shown), and of addresses read for a
    village (`convert: address_village`) that named none, by why."""
    if "village_code" not in staged:
        return {"unknown_village_codes": {}, "malformed_village_codes": 0, "addresses_unplaced": {}}
    rows = list(zip(staged["village_code"], staged["_flags"], strict=True))
    unknown = Counter(code for code, flags in rows if "village_code:unknown_code" in flags)
    unread = Counter(f.partition(":")[2] for _, flags in rows for f in flags
                     if f in _ADDRESS_UNPLACED)  # fmt: skip
    return {
        "unknown_village_codes": dict(sorted(unknown.items())),
        "malformed_village_codes": sum("village_code:malformed_code" in f for _, f in rows),
        "addresses_unplaced": dict(sorted(unread.items())),
    }


def _write(
    con: duckdb.DuckDBPyConnection, source: Source, period: Period, frame: pd.DataFrame
) -> None:
    name = f'staging."{source.source}"'
    columns = ", ".join(f'"{c}" {t}' for c, t in staged_columns(source).items())
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {name} (_period VARCHAR, _source VARCHAR, _record_key VARCHAR, "
        f"_window_end TIMESTAMP, _ended BOOLEAN, {columns}, _flags VARCHAR[])"
    )
    con.execute(f"DELETE FROM {name} WHERE _period = ?", [str(period)])
    insert_frame(con, name, frame)


def standardize(settings: StoreSettings, contracts: Contracts, period: Period, run_id: str) -> dict:
    """Stage every source that has landed anything; counts per source, with the village codes
    the division registry does not hold. A record with a code its mapping quarantines
    (`unknown: quarantine`) goes to the quarantine instead, counted as such."""
    counts = {}
    divisions = registry(contracts)
    villages, names = village_codes(divisions), village_names(divisions)
    with open_store(settings) as con, transaction(con, run_id=run_id, stage=STAGE) as tx:
        landed = tables(con, "landing")
        for name, source in contracts.sources.items():
            if name not in landed:
                continue
            frame = standardize_source(con, source, period, villages, contracts.codes, names)
            # a rerun of the period replaces what an earlier run quarantined for it
            con.execute(
                "DELETE FROM quarantine.rows WHERE stage = ? AND source = ? AND window_end = ?",
                [STAGE, name, period.end],
            )
            tx.quarantine(unknown_code_records(source, period, frame))
            frame = frame[frame["_unknown"].map(len) == 0].drop(columns="_unknown")
            _write(con, source, period, frame)
            flagged = int(sum(1 for f in frame["_flags"] if f))
            # each count by its own query: the landed records the period holds, the rows staged,
            # the records quarantined
            (read,) = con.execute(
                f"SELECT count(*) FROM ({state_sql(source, period)}) WHERE _op <> 'delete'"
            ).fetchone()
            (kept,) = con.execute(
                f'SELECT count(*) FROM staging."{name}" WHERE _period = ?', [str(period)]
            ).fetchone()
            (quarantined,) = con.execute(
                "SELECT count(DISTINCT location) FROM quarantine.rows "
                "WHERE run_id = ? AND stage = ? AND source = ?",
                [run_id, STAGE, name],
            ).fetchone()
            tx.account(name, read=read, kept=kept, quarantined=quarantined)
            counts[name] = {
                "records": len(frame),
                "flagged": flagged,
                "ended": int(frame["_ended"].sum()),
                **village_code_counts(frame),
            }
            if quarantined:
                counts[name]["quarantined"] = quarantined
    return counts
