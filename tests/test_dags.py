"""The DAG folder parses cleanly under the repo's airflow.cfg."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.airflow
def test_dags_folder_imports_cleanly():
    from airflow.configuration import conf
    from airflow.models import DagBag

    assert Path(conf.get("core", "dags_folder")) == ROOT / "dags"
    assert os.environ["AIRFLOW_CONFIG"] == str(ROOT / "airflow.cfg")
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    for dag in bag.dags.values():
        assert dag.tags, f"{dag.dag_id} has no tags"
