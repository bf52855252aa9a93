"""Shared fixtures: throw-away warehouses on SQLite and PostgreSQL, synthetic deliveries."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from pipeline.config import Settings

# Every researcher view the migrations create (sql/views/), each filled by a successful run.
RESEARCHER_VIEWS = (
    "v_latest_run",
    "v_latest_survival_summary",
    "v_latest_km_curves",
    "v_latest_cox",
    "v_latest_rmst",
    "v_latest_ph_test",
    "v_latest_response_rates",
    "v_latest_attrition",
    "v_latest_adverse_event_rates",
    "v_latest_dq_summary",
)

PG_ADMIN_URL = os.environ.get(
    "RELIEF_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _pg_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The PostgreSQL admin URL; CI starts the server (.ci/run), so absence is a failure there."""
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
    return PG_ADMIN_URL


def make_pg_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    """Create an empty database; returns its URL and a function that drops it."""
    name = f"relief_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin_url.rsplit("/", 1)[0] + f"/{name}", drop


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty warehouse on each engine: a SQLite file, or a PostgreSQL database created and dropped."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.db'}"
        return
    url, drop = make_pg_database(request.getfixturevalue("pg_server"))
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def settings_for(tmp_path: Path):
    def make(url: str) -> Settings:
        return Settings(warehouse_url=url, report_dir=tmp_path / "reports", demo=True)

    return make


@pytest.fixture(scope="session")
def small_delivery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 400-patient synthetic delivery, written once per test session."""
    from pipeline.synth import write_delivery

    return write_delivery(
        tmp_path_factory.mktemp("landing") / "delivery-001", patients=400, seed=11
    )
