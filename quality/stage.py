"""The check stage: every staged source checked against its entity's contract with Great
Expectations; results stored as counts, failing records quarantined with the rule and reason.
Quarantined records are not taken out of linkage: their bad values are already flagged, and a
record is linked on what it has (docs/architecture.md, "Never")."""

from __future__ import annotations

from pathlib import Path

from onetable.schemas.contracts import Contracts, Source
from onetable.warehouse.ledger import QuarantineRecord, tables, transaction
from onetable.warehouse.periods import Period
from onetable.warehouse.store import StoreSettings, open_store

STAGE = "check"


def _checked_columns(source: Source) -> dict[str, tuple[str, dict[str, str], list[str]]]:
    """Per dataset (the source's entity, or a role): its entity, the staged columns this source
    fills with the entity column each is checked as, and those that hold a list (split cells),
    each of whose values is checked."""
    out: dict[str, tuple[str, dict[str, str], list[str]]] = {}
    for _, mapping, target in source.mappings():
        _, columns, lists = out.setdefault(target.role or target.entity, (target.entity, {}, []))
        columns[target.staged] = target.column
        if mapping.split:
            lists.append(target.staged)
    return out


def check(settings: StoreSettings, contracts: Contracts, period: Period, run_id: str,
          docs_dir: Path | None = None) -> dict:  # fmt: skip
    """Check the period's staged records of every source; counts per source."""
    from onetable.quality.checks import check_frame, write_results

    counts = {}
    with open_store(settings) as con, transaction(con, run_id=run_id, stage=STAGE) as tx:
        staged = tables(con, "staging")
        for name, source in contracts.sources.items():
            if name not in staged:
                continue
            frame = con.execute(
                f'SELECT * FROM staging."{name}" WHERE _period = ?', [str(period)]
            ).df()
            frame = frame.reset_index(drop=True)
            frame["_row_id"] = frame.index
            # a rerun of the period replaces what an earlier run quarantined for it
            con.execute(
                "DELETE FROM quarantine.rows WHERE stage = ? AND source = ? AND window_end = ?",
                [STAGE, name, period.end],
            )
            failed_rows: set[int] = set()
            errors = 0
            for dataset, (entity_name, columns, lists) in _checked_columns(source).items():
                entity = contracts.entities[entity_name]
                # check only what this source fills: another department's columns are not its gaps
                part = entity.model_copy(
                    update={"columns": {c: entity.columns[c] for c in columns.values()}}
                )
                # one row per value of a split cell, each knowing the record it came from
                values = frame[[*columns, "_row_id"]].rename(columns={"_row_id": "_record_row"})
                for column in lists:
                    values = values.explode(column)
                values = values.rename(columns=columns).reset_index(drop=True)
                values["_row_id"] = values.index
                result = check_frame(values[[*columns.values(), "_row_id"]], part, key="_row_id",
                                     docs_dir=docs_dir, as_of=period.reference_date, run_name=run_id,
                                     codes=contracts.codes)  # fmt: skip
                write_results(
                    tx, result, run_id=run_id, period=str(period), dataset=f"{name}.{dataset}"
                )
                errors += len(result.errors)
                records = []
                for row, rule_id, field, reason in result.failures[
                    ["key", "rule_id", "field", "reason"]
                ].itertuples(index=False):
                    record = int(values.at[int(row), "_record_row"])
                    failed_rows.add(record)
                    value = values.at[int(row), field] if field in values.columns else None
                    records.append(QuarantineRecord(
                        source=name, rule_id=rule_id, reason=reason, field=field,
                        raw=None if value is None else str(value),
                        location=f'staging."{name}" record {frame.at[record, "_record_key"]}',
                        # the period checked stands as the window, so that a rerun finds its rows
                        window_start=period.start, window_end=period.end,
                    ))  # fmt: skip
                tx.quarantine(records)
            # the records quarantined, as the store holds them: a failing record of which nothing
            # was written is missing here, and the counts no longer add up
            (quarantined,) = con.execute(
                "SELECT count(DISTINCT location) FROM quarantine.rows "
                "WHERE run_id = ? AND stage = ? AND source = ?",
                [run_id, STAGE, name],
            ).fetchone()
            tx.account(
                name, read=len(frame), kept=len(frame) - len(failed_rows), quarantined=quarantined
            )
            counts[name] = {"records": len(frame), "failed": len(failed_rows), "errors": errors}
    return counts
