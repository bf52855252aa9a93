"""The read-only researcher role (PostgreSQL): results, dq and the views; nothing upstream."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from pipeline import migrate
from tests.conftest import make_pg_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_warehouse(pg_server: str) -> Iterator[str]:
    url, drop = make_pg_database(pg_server)
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def researcher(pg_server: str) -> Iterator[str]:
    """A LOGIN member of relief_researcher (trust auth on 127.0.0.1); dropped afterwards."""
    name = f"reader_{uuid.uuid4().hex[:8]}"
    yield name
    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
    admin.dispose()


def test_researcher_reads_results_and_views_but_not_core_or_staging(pg_warehouse, researcher):
    migrate.upgrade(pg_warehouse)
    owner = create_engine(pg_warehouse)
    with owner.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{researcher}" LOGIN IN ROLE relief_researcher'))
        conn.execute(
            text(
                "INSERT INTO results.model_runs (run_id, status, finished_at) "
                "VALUES ('r1', 'success', now())"
            )
        )
        conn.execute(
            text("INSERT INTO results.cox (run_id, model, term, hr) VALUES ('r1', 'main', 'x', 2)")
        )
        # a table created after the grant is covered by the default privileges
        conn.execute(text("CREATE TABLE results.later_table (x int)"))
    owner.dispose()

    as_researcher = create_engine(make_url(pg_warehouse).set(username=researcher))
    try:
        with as_researcher.connect() as conn:
            assert conn.execute(text("SELECT hr FROM results.v_latest_cox")).scalar_one() == 2
            assert conn.execute(text("SELECT count(*) FROM results.cox")).scalar_one() == 1
            conn.execute(text("SELECT count(*) FROM results.later_table"))
            conn.execute(text("SELECT count(*) FROM dq.validation_results"))
            conn.execute(text("SELECT count(*) FROM results.v_latest_dq_summary"))
        for table in (
            "core.patients",
            "staging.deliveries",
            "quarantine.rows",
            "analysis.episodes",
        ):
            with as_researcher.connect() as conn, pytest.raises(ProgrammingError) as denied:
                conn.execute(text(f"SELECT count(*) FROM {table}"))
            assert "permission denied" in str(denied.value), table
        with as_researcher.connect() as conn, pytest.raises(ProgrammingError) as denied:
            conn.execute(text("DELETE FROM results.cox"))
        assert "permission denied" in str(denied.value)
    finally:
        as_researcher.dispose()


def test_databases_migrated_concurrently_all_get_the_role(pg_server):
    """Separate processes, as Airflow workers would be: the cluster-wide role is created once."""
    databases = [make_pg_database(pg_server) for _ in range(3)]
    script = "import sys; from pipeline import migrate; migrate.upgrade(sys.argv[1])"
    try:
        workers = [
            subprocess.Popen([sys.executable, "-c", script, url], stderr=subprocess.PIPE, text=True)
            for url, _ in databases
        ]
        failures = [w.communicate(timeout=120)[1] for w in workers if w.wait(timeout=120) != 0]
        assert failures == []
        assert all(migrate.current(url) == migrate.head() for url, _ in databases)
    finally:
        for _, drop in databases:
            drop()
