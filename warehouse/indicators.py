"""The one-table stage: each 一套表 indicator per village for the period, from the published
persons, with the rules that tie indicators checked (violations are reported, not hidden), and
the active persons it leaves out for want of a village counted and listed (unplaced: their
stable id, the masked name and the sources that know them, so an office can find their records)."""

from __future__ import annotations

import operator

from onetable.schemas.one_table import OneTable
from onetable.warehouse.ledger import transaction
from onetable.warehouse.masking import mask
from onetable.warehouse.periods import Period
from onetable.warehouse.store import StoreSettings, open_store

STAGE = "one_table"
UNPLACED_LISTED = 20  # the run summary lists this many persons with no village, masked
_OPS = {"<=": operator.le, "<": operator.lt, "=": operator.eq, ">=": operator.ge, ">": operator.gt}


def one_table(settings: StoreSettings, table: OneTable, period: Period, run_id: str) -> dict:
    """Write marts.one_table for the period; returns the villages, the indicators, every rule
    violation as (village, rule) and the active persons in no village (unplaced)."""
    with open_store(settings) as con, transaction(con, run_id=run_id, stage=STAGE) as tx:
        con.execute(
            "CREATE TABLE IF NOT EXISTS marts.one_table (period VARCHAR, version VARCHAR, "
            "village_code VARCHAR, indicator VARCHAR, name_zh VARCHAR, unit VARCHAR, value BIGINT, "
            "run_id VARCHAR)"
        )
        con.execute("DELETE FROM marts.one_table WHERE period = ?", [str(period)])
        counts = ", ".join(
            f'count(*) FILTER (WHERE {i.where}) AS "{i.id}"' for i in table.indicators
        )
        rows = con.execute(
            f"SELECT village_code, {counts} FROM marts.person_period WHERE period = ? "
            "AND village_code IS NOT NULL GROUP BY village_code ORDER BY village_code",
            [str(period)],
        ).fetchall()
        unplaced = con.execute(
            "SELECT m.person_id, m.name, c.sources FROM marts.person_period m "
            "LEFT JOIN core.person_period c USING (period, person_id) "
            "WHERE m.period = ? AND m.active AND m.village_code IS NULL ORDER BY m.person_id",
            [str(period)],
        ).fetchall()
        values = []
        violations = []
        for village, *numbers in rows:
            by_id = dict(zip((i.id for i in table.indicators), numbers, strict=True))
            for indicator in table.indicators:
                values.append((str(period), table.version, village, indicator.id, indicator.name_zh,
                               indicator.unit, by_id[indicator.id], run_id))  # fmt: skip
            violations += [
                (village, f"{r.left} {r.op} {r.right}")
                for r in table.rules
                if not _OPS[r.op](by_id[r.left], by_id[r.right])
            ]
        if values:
            con.executemany("INSERT INTO marts.one_table VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)
        tx.audit(
            "one_table",
            f"period {period}",
            {"villages": len(rows), "violations": len(violations), "unplaced": len(unplaced)},
        )
    return {
        "villages": len(rows),
        "indicators": len(table.indicators),
        "violations": violations,
        "unplaced": len(unplaced),
        "unplaced_persons": [
            f"{pid} {mask(name, 'name') if name else '(no name)'} ({', '.join(sources or [])})"
            for pid, name, sources in unplaced[:UNPLACED_LISTED]
        ],
    }
