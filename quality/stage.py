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


def _checked_columns(source: Source) -> dict[str, list[str]]:
    """entity -> the canonical columns this source fills, each checked by its entity's rules."""
    out: dict[str, list[str]] = {}
    for src_col in source.columns:
        entity, column = source.target(src_col)
        out.setdefault(entity, []).append(column)
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
            for entity_name, columns in _checked_columns(source).items():
                entity = contracts.entities[entity_name]
                # check only what this source fills: another department's columns are not its gaps
                part = entity.model_copy(
                    update={"columns": {c: entity.columns[c] for c in columns}}
                )
                result = check_frame(frame[[*columns, "_row_id"]], part, key="_row_id",
                                     docs_dir=docs_dir, as_of=period.reference_date, run_name=run_id)  # fmt: skip
                write_results(
                    tx, result, run_id=run_id, period=str(period), dataset=f"{name}.{entity_name}"
                )
                errors += len(result.errors)
                records = []
                for row, rule_id, field, reason in result.failures[
                    ["key", "rule_id", "field", "reason"]
                ].itertuples(index=False):
                    failed_rows.add(int(row))
                    value = frame.at[int(row), field] if field in frame.columns else None
                    records.append(QuarantineRecord(
                        source=name, rule_id=rule_id, reason=reason, field=field,
                        raw=None if value is None else str(value),
                        location=f'staging."{name}" record {frame.at[int(row), "_record_key"]}',
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
