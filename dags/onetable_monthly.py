"""onetable, monthly: the pipeline's stages for one period, each stage a task calling the same
function the CLI runs (onetable.pipeline.STAGES). XCom carries the period, the run id and each
stage's counts; every task waits for the store in one pool (one slot with a DuckDB-file catalog)."""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, chain, dag, task

from onetable.pipeline import STAGES

POOL = "onetable_store"


@dag(
    dag_id="onetable_monthly",
    schedule="0 3 2 * *",  # the 2nd of each month at 03:00: the month before is complete
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    tags=["onetable", "一套表"],
    default_args={
        "owner": "county-data-office",
        "retries": 2,
        "retry_delay": pendulum.duration(minutes=5),
    },
    params={
        "period": Param("", type="string", description="YYYY-MM; empty: the last complete month")
    },
)
def onetable_monthly():
    @task(pool=POOL)
    def begin(params: dict | None = None, run_id: str | None = None, dag_run=None) -> dict:
        """Fix the period and the run id every stage of this run uses, and check what would
        otherwise fail only after publish."""
        from onetable.pipeline import RunContext, check_before_run, new_run_id
        from onetable.warehouse.periods import Period

        after = dag_run.run_after if dag_run is not None else pendulum.now("UTC")
        period = (
            Period.parse(params["period"])
            if params and params.get("period")
            else Period.last_complete(after.date())
        )
        run = {"period": str(period), "run_id": new_run_id(period)}
        check_before_run(RunContext.create(run["period"], run["run_id"]))
        return run

    def stage_task(name: str):
        @task(task_id=name, pool=POOL)
        def run(run: dict) -> dict:
            from onetable.pipeline import RunContext, run_stage

            return run_stage(name, RunContext.create(run["period"], run["run_id"]))

        return run

    run = begin()
    chain(run, *[stage_task(name)(run) for name in STAGES])


onetable_monthly()
