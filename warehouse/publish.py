"""The publish stage: the period's persons become visible to every mart in one transaction, a new
snapshot, with the landings they came from (lineage) and an audit row. Readers of `marts` never
see half a run: stages before this one write only staging and core."""

from __future__ import annotations

from onetable.schemas.one_table import PERSON_PERIOD
from onetable.warehouse.ledger import run_snapshots, transaction
from onetable.warehouse.periods import Period
from onetable.warehouse.store import StoreSettings, open_store

STAGE = "publish"


def publish(settings: StoreSettings, period: Period, run_id: str) -> dict:
    """Publish the period; returns rows, windows of lineage and the snapshot id."""
    ref = period.reference_date.isoformat()
    with open_store(settings) as con:
        with transaction(con, run_id=run_id, stage=STAGE) as tx:
            con.execute(f"CREATE TABLE IF NOT EXISTS marts.person_period ({PERSON_PERIOD})")
            con.execute(
                "CREATE TABLE IF NOT EXISTS meta.publications (period VARCHAR, run_id VARCHAR, "
                "rows BIGINT, published_at TIMESTAMP)"
            )
            con.execute("DELETE FROM marts.person_period WHERE period = ?", [str(period)])
            (rows,) = con.execute(
                f"""
                INSERT INTO marts.person_period
                SELECT p.period, p.person_id, p.id_number, p.name, p.sex, p.birth_date,
                       year(DATE '{ref}') - year(p.birth_date)
                         - CASE WHEN strftime(DATE '{ref}', '%m%d') < strftime(p.birth_date, '%m%d')
                           THEN 1 ELSE 0 END,
                       p.phone, p.village_code, p.residence_type,
                       -- status from activity until sources' own status codes reach the core
                       CASE WHEN p.active THEN '正常' ELSE '注销' END, p.active,
                       coalesce(g.groups, [])
                FROM core.person_period p LEFT JOIN (
                    SELECT person_id, list(DISTINCT "group" ORDER BY "group") AS groups
                    FROM core.group_period WHERE period = ? GROUP BY person_id) g USING (person_id)
                WHERE p.period = ?
                """,
                [str(period), str(period)],
            ).fetchone()
            windows = con.execute(
                "SELECT source, window_start, window_end, max(version) FROM meta.windows "
                "WHERE window_end <= ? GROUP BY ALL ORDER BY source, window_end",
                [period.end],
            ).fetchall()
            for source, start, end, version in windows:
                tx.record_lineage(source, start, end, version)
            con.execute(
                "INSERT INTO meta.publications VALUES (?, ?, ?, now())", [str(period), run_id, rows]
            )
            tx.audit("publish", f"period {period}", {"rows": rows, "windows": len(windows)})
        snapshot = [r for r in run_snapshots(con, run_id) if r["stage"] == STAGE][-1]["snapshot"]
    return {"rows": rows, "windows": len(windows), "snapshot": snapshot}
