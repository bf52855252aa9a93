"""`airflow dags test relief_nightly` end to end on a synthetic delivery and a SQLite warehouse."""

from __future__ import annotations

import subprocess

import pytest

from pipeline.synth import write_delivery
from pipeline.warehouse import Warehouse
from tests.dags.conftest import AIRFLOW, airflow_env

pytestmark = pytest.mark.slow


def test_airflow_dags_test_runs_every_stage(airflow_home, tmp_path):
    landing = tmp_path / "landing"
    write_delivery(landing / "delivery-001", patients=300, seed=4)
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    env = airflow_env(
        airflow_home,
        RELIEF_DEMO="1",
        RELIEF_LANDING_DIR=str(landing),
        RELIEF_WAREHOUSE_URL=url,
        RELIEF_REPORT_DIR=str(tmp_path / "reports"),
    )
    done = subprocess.run(
        [AIRFLOW, "dags", "test", "relief_nightly"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = Warehouse(url).read("results", "model_runs")
    assert list(runs.status) == ["success"]
    assert runs.trigger.iloc[0] == "schedule" and runs.dag_run_id.iloc[0]
    assert (tmp_path / "reports" / runs.run_id.iloc[0] / "report.html").exists()
