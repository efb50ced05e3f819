"""The standardize stage: each source's landed records, as of the period's end, in canonical
columns with standardized values and the flags their checks raised (bad values flagged, not
dropped). One row per department record: the latest version it had by the period's end. A
village code is checked against the division registry the contracts name."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import duckdb
import pandas as pd

from onetable.connectors.landing import landed_columns, latest_rows_sql
from onetable.linkage import standardize as st
from onetable.schemas.contracts import Contracts, Mapping, Source
from onetable.schemas.divisions import VillageCodes, registry, village_codes
from onetable.warehouse.ledger import insert_frame, tables, transaction
from onetable.warehouse.periods import Period
from onetable.warehouse.store import StoreSettings, open_store

STAGE = "standardize"
_META = ["_period", "_source", "_record_key", "_window_end", "_ended"]


def converter(mapping: Mapping) -> Callable[[str | None], st.Result]:
    """The standardizer a mapping's `convert` names."""
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
        case "code":
            return lambda raw: st.code(raw, mapping.values)
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


def staged_columns(source: Source) -> list[str]:
    """Canonical column names of a source's staging table, in mapping order."""
    mapped = [source.target(c)[1] for c in source.columns]
    return list(dict.fromkeys(mapped + [t.rpartition(".")[2] for t in source.constants]))


def state_sql(source: Source, period: Period) -> str:
    """Each record's latest landed version by the period's end; a record a snapshot no longer
    holds is gone, a record whose status column ends it (注销, 迁出) stays, marked ended."""
    return (
        f"SELECT * FROM ({latest_rows_sql(source, before=period.end)}) "
        "QUALIFY row_number() OVER (PARTITION BY _record_key "
        "ORDER BY _window_end DESC, _row DESC NULLS FIRST) = 1"
    )


def standardize_source(
    con: duckdb.DuckDBPyConnection, source: Source, period: Period, villages: VillageCodes
) -> pd.DataFrame:
    """The staging rows of one source for one period."""
    present = set(landed_columns(con, source))
    frame = con.execute(f"SELECT * FROM ({state_sql(source, period)}) WHERE _op <> 'delete'").df()
    out = pd.DataFrame({
        "_period": str(period),
        "_source": source.source,
        "_record_key": frame["_record_key"],
        "_window_end": frame["_window_end"],
        "_ended": frame["_deleted"].astype(bool),
    })  # fmt: skip
    flags: list[list[str]] = [[] for _ in range(len(frame))]
    for src_col, mapping in source.columns.items():
        column = source.target(src_col)[1]
        if src_col not in present:
            out[column] = None
            continue
        convert = converter(mapping)
        if column == "village_code":
            convert = village_checked(convert, villages)
        raw = frame[src_col].astype(object).where(frame[src_col].notna(), None)
        results = {v: convert(v) for v in pd.unique(raw)}  # distinct values only
        out[column] = [results[v][0] for v in raw]
        for i, v in enumerate(raw):
            flags[i].extend(f"{column}:{f}" for f in results[v][1])
    for i, found in enumerate(consistency_flags(out)):
        flags[i].extend(found)
    for target, value in source.constants.items():
        out[target.rpartition(".")[2]] = value
    out["_flags"] = flags
    return out


def consistency_flags(staged: pd.DataFrame) -> list[tuple[str, ...]]:
    """Per row, where the stated birth date or sex disagrees with the ID number's: flagged,
    the values kept (a row without an ID number column has nothing to compare)."""
    if "id_number" not in staged:
        return [()] * len(staged)
    empty = pd.Series(None, index=staged.index, dtype=object)
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


def village_code_counts(staged: pd.DataFrame) -> dict:
    """The village codes of staged rows the registry does not hold, with their records (a code is
    not personal data: the run summary shows it), and the count of values that are no code at
    all (those could be anything, so they are counted, never shown)."""
    if "village_code" not in staged:
        return {"unknown_village_codes": {}, "malformed_village_codes": 0}
    rows = list(zip(staged["village_code"], staged["_flags"], strict=True))
    unknown = Counter(code for code, flags in rows if "village_code:unknown_code" in flags)
    return {
        "unknown_village_codes": dict(sorted(unknown.items())),
        "malformed_village_codes": sum("village_code:malformed_code" in f for _, f in rows),
    }


def _write(
    con: duckdb.DuckDBPyConnection, source: Source, period: Period, frame: pd.DataFrame
) -> None:
    name = f'staging."{source.source}"'
    columns = ", ".join(f'"{c}" VARCHAR' for c in staged_columns(source))
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {name} (_period VARCHAR, _source VARCHAR, _record_key VARCHAR, "
        f"_window_end TIMESTAMP, _ended BOOLEAN, {columns}, _flags VARCHAR[])"
    )
    con.execute(f"DELETE FROM {name} WHERE _period = ?", [str(period)])
    insert_frame(con, name, frame)


def standardize(settings: StoreSettings, contracts: Contracts, period: Period, run_id: str) -> dict:
    """Stage every source that has landed anything; counts per source, with the village codes
    the division registry does not hold."""
    counts = {}
    villages = village_codes(registry(contracts))
    with open_store(settings) as con, transaction(con, run_id=run_id, stage=STAGE) as tx:
        landed = tables(con, "landing")
        for name, source in contracts.sources.items():
            if name not in landed:
                continue
            frame = standardize_source(con, source, period, villages)
            _write(con, source, period, frame)
            flagged = int(sum(1 for f in frame["_flags"] if f))
            # each count by its own query: the landed records the period holds, the rows staged
            (read,) = con.execute(
                f"SELECT count(*) FROM ({state_sql(source, period)}) WHERE _op <> 'delete'"
            ).fetchone()
            (kept,) = con.execute(
                f'SELECT count(*) FROM staging."{name}" WHERE _period = ?', [str(period)]
            ).fetchone()
            tx.account(name, read=read, kept=kept, quarantined=0)
            counts[name] = {
                "records": len(frame),
                "flagged": flagged,
                "ended": int(frame["_ended"].sum()),
                **village_code_counts(frame),
            }
    return counts
