"""The DAG folder parses cleanly under the repo's airflow.cfg, and the monthly DAG runs the same
stages as the CLI."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.airflow
def test_dags_folder_imports_cleanly():
    from airflow.configuration import conf
    from airflow.models import DagBag

    assert Path(conf.get("core", "dags_folder")) == ROOT / "dags"
    assert os.environ["AIRFLOW_CONFIG"] == str(ROOT / "airflow.cfg")
    started = time.perf_counter()
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    assert set(bag.dags) == {"onetable_monthly"}
    for dag in bag.dags.values():
        assert dag.tags, f"{dag.dag_id} has no tags"
        assert all(t.retries >= 1 for t in dag.tasks)
    assert (
        time.perf_counter() - started < 30
    )  # a guard against a top-level GX import, not a benchmark


HEAVY = ("duckdb", "pyarrow", "pandas", "great_expectations")


def _heavy_after(prelude: str) -> list[str]:
    """The heavy modules loaded once `prelude` ran and the DAG file was imported, in a fresh
    interpreter, so that nothing this test session imported counts."""
    code = (
        f"{prelude}import sys; sys.path.insert(0, 'dags'); import onetable_monthly; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return [m for m in out.stdout.strip().split(",") if m]


@pytest.mark.airflow
def test_parsing_the_dags_imports_nothing_heavy():
    """The scheduler parses DAG files often: the stages' libraries load only when a task runs."""
    assert _heavy_after("") == []
    assert _heavy_after(f"import {', '.join(HEAVY)}; ") == list(HEAVY)  # the check sees each


@pytest.mark.airflow
def test_stage_tasks_follow_the_pipeline_order():
    from airflow.models import DagBag

    from onetable.pipeline import STAGES

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["onetable_monthly"]
    assert dag.get_task("begin").downstream_task_ids == set(STAGES)  # every stage gets the run
    first = next(iter(STAGES))
    order, task = [first], dag.get_task(first)
    while task.downstream_task_ids:
        (next_id,) = task.downstream_task_ids
        task = dag.get_task(next_id)
        order.append(task.task_id)
    assert order == list(STAGES)


@pytest.mark.airflow
def test_the_pool_the_tasks_use_is_configured():
    import json

    from airflow.models import DagBag

    pools = json.loads((ROOT / "airflow_pools.json").read_text(encoding="utf-8"))
    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["onetable_monthly"]
    assert {t.pool for t in dag.tasks} == {"onetable_store"}
    assert pools["onetable_store"]["slots"] == 1  # a DuckDB-file catalog admits one process
