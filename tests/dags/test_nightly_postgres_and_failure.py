"""The nightly DAG through `airflow dags test` against PostgreSQL (every researcher view
filled), and a run that fails on bad data is marked failed in model_runs with the error."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest
from sqlalchemy import text

from pipeline.synth import write_delivery
from pipeline.warehouse import Warehouse
from tests.conftest import RESEARCHER_VIEWS, make_pg_database
from tests.dags.conftest import AIRFLOW, airflow_env

pytestmark = pytest.mark.slow


def dags_test(airflow_home, landing, url, reports, logical_date):
    env = airflow_env(
        airflow_home,
        RELIEF_DEMO="1",
        RELIEF_LANDING_DIR=str(landing),
        RELIEF_WAREHOUSE_URL=url,
        RELIEF_REPORT_DIR=str(reports),
    )
    return subprocess.run(
        [AIRFLOW, "dags", "test", "relief_nightly", logical_date],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_nightly_against_postgresql_fills_every_view(airflow_home, pg_server, tmp_path):
    landing = tmp_path / "landing"
    write_delivery(landing / "delivery-001", patients=300, seed=8)
    url, drop = make_pg_database(pg_server)
    try:
        done = dags_test(
            airflow_home, landing, url, tmp_path / "reports", "2026-03-01T02:00:00+00:00"
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        wh = Warehouse(url)
        with wh.engine.connect() as conn:
            for view in RESEARCHER_VIEWS:
                rows = conn.execute(text(f"SELECT count(*) FROM results.{view}"))
                assert rows.scalar_one() > 0, view
        wh.engine.dispose()
    finally:
        drop()


def test_failed_nightly_run_is_marked_failed_with_the_error(airflow_home, tmp_path):
    landing = tmp_path / "landing"
    delivery = write_delivery(landing / "delivery-001", patients=150, seed=9)
    scores = pd.read_csv(delivery / "pain_assessments.csv", dtype=str)
    scores.loc[: len(scores) // 5, "pain_score"] = "eleven"  # 20 % bad rows: blocks the run
    scores.to_csv(delivery / "pain_assessments.csv", index=False)
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    done = dags_test(airflow_home, landing, url, tmp_path / "reports", "2026-03-02T02:00:00+00:00")
    assert done.returncode != 0
    runs = Warehouse(url).read("results", "model_runs")
    assert list(runs.status) == ["failed"]
    assert "validation blocked" in runs.error.iloc[0] and "pain_assessments" in runs.error.iloc[0]
    assert Warehouse(url).read("core", "pain_assessments").empty  # nothing promoted
