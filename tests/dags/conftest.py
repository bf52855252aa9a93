"""Airflow fixtures: a throw-away AIRFLOW_HOME with a SQLite metadata database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "RELIEF_"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        RELIEF_TASK_RETRIES="0",  # a failing task fails the test at once, not after back-off
        **extra,
    )
    return env


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("airflow_home")
    subprocess.run(
        [AIRFLOW, "db", "migrate"],
        env=airflow_env(home),
        check=True,
        capture_output=True,
        timeout=300,
    )
    return home


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "live_airflow: starts a real Airflow (api-server, scheduler, dag-processor); "
        "skip with RELIEF_SKIP_LIVE_AIRFLOW=1",
    )


# Columns that record when or how long, not what: a re-run may change them.
VOLATILE = {"started_at", "finished_at", "timings", "code_version", "row_counts"}


def warehouse_snapshot(url: str) -> dict[str, list[tuple]]:
    """Every warehouse table's rows (volatile columns dropped), sorted: compare with ==."""
    import pandas as pd

    from pipeline.warehouse import Warehouse

    wh = Warehouse(url)
    snapshot: dict[str, list[tuple]] = {}
    with wh.engine.connect() as conn:
        for key, table in sorted(wh.metadata.tables.items()):
            if not wh.has_table(*_layer_name(key)):
                continue
            frame = pd.read_sql(table.select(), conn)
            frame = frame.drop(columns=[c for c in frame.columns if c in VOLATILE])
            rows = [
                tuple(
                    None if pd.isna(v) else (round(v, 9) if isinstance(v, float) else v) for v in r
                )
                for r in frame.itertuples(index=False, name=None)
            ]
            snapshot[key] = sorted(rows, key=repr)
    return snapshot


def _layer_name(key: str) -> tuple[str, str]:
    layer, _, name = key.replace(".", "__").partition("__")
    return layer, name
