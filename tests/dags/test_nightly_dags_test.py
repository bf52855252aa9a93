"""`airflow dags test relief_nightly` end to end on a synthetic delivery and a SQLite warehouse.

Then every task of that DAG run is re-executed with the same relief run id, first one
task at a time and then the whole run in order — what clearing a task or the run makes
Airflow do, but in-process (``airflow dags test`` always opens a new DAG run, and a
second Airflow run costs ~40 s). The warehouse must come out identical each time.
"""

from __future__ import annotations

import subprocess

import pytest

from pipeline.config import Settings
from pipeline.synth import write_delivery
from pipeline.warehouse import Warehouse
from tests.dags.conftest import AIRFLOW, airflow_env, warehouse_snapshot

pytestmark = pytest.mark.slow

LOGICAL_DATE = "2026-02-03T02:00:00+00:00"


def test_airflow_dags_test_runs_every_stage_and_reruns_identically(airflow_home, tmp_path):
    landing = tmp_path / "landing"
    write_delivery(landing / "delivery-001", patients=160, seed=4)
    write_delivery(landing / "delivery-002", patients=60, seed=5)
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    env = airflow_env(
        airflow_home,
        RELIEF_DEMO="1",
        RELIEF_LANDING_DIR=str(landing),
        RELIEF_WAREHOUSE_URL=url,
        RELIEF_REPORT_DIR=str(tmp_path / "reports"),
    )
    done = subprocess.run(
        [AIRFLOW, "dags", "test", "relief_nightly", LOGICAL_DATE],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = Warehouse(url).read("results", "model_runs")
    assert list(runs.status) == ["success"]
    assert runs.trigger.iloc[0] == "schedule" and runs.dag_run_id.iloc[0]
    assert runs.run_id.iloc[0].startswith("n-")
    assert (tmp_path / "reports" / runs.run_id.iloc[0] / "report.html").exists()
    deliveries = Warehouse(url).read("staging", "deliveries")
    assert len(deliveries) == 2  # one mapped ingest task per delivery
    first = warehouse_snapshot(url)

    settings = Settings(warehouse_url=url, report_dir=tmp_path / "reports", demo=True)
    run_id = runs.run_id.iloc[0]
    tasks = nightly_tasks(settings, run_id, landing, runs.dag_run_id.iloc[0])
    for name, task in tasks.items():  # clear one task at a time
        task()
        assert warehouse_snapshot(url) == first, f"re-running {name} changed the warehouse"
    for task in tasks.values():  # clear the whole run
        task()
    assert warehouse_snapshot(url) == first


def nightly_tasks(settings, run_id, landing, dag_run_id):
    """The nightly DAG's tasks as the DAG file calls them, in order."""
    from pipeline import stages

    def ingest():
        folders = stages.new_deliveries(settings, landing)
        outcomes = [stages.ingest_delivery(settings, run_id, f) for f in folders]
        stages.ingest_summary(settings, run_id, outcomes)

    return {
        "begin": lambda: stages.begin(
            settings,
            run_id=run_id,
            trigger="schedule",
            dag_run_id=dag_run_id,
            landing=landing,
            resume=True,
        ),
        "ingest": ingest,
        "validate": lambda: stages.validate(settings, run_id),
        "derive": lambda: stages.derive(settings, run_id),
        "model": lambda: stages.model(settings, run_id),
        "report": lambda: stages.report(settings, run_id),
    }
