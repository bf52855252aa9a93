"""Schema as code: Alembic migrations build exactly ``build_metadata`` on both engines."""

from __future__ import annotations

import argparse
import threading
from datetime import datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, create_engine, func, inspect, select, text

from pipeline import cli_db, migrate
from pipeline.tables import LAYERS, build_metadata
from pipeline.warehouse import Warehouse
from tests.conftest import RESEARCHER_VIEWS


def view_names(wh: Warehouse) -> set[str]:
    probe = inspect(wh.engine)
    if wh.dialect == "sqlite":
        return {v.removeprefix("results__") for v in probe.get_view_names()}
    return set(probe.get_view_names(schema="results"))


def test_upgrade_builds_exactly_build_metadata_and_is_idempotent(warehouse_url):
    assert migrate.current(warehouse_url) is None
    assert migrate.upgrade(warehouse_url) == migrate.head()
    assert migrate.schema_diff(warehouse_url) == []
    wh = Warehouse(warehouse_url)
    assert view_names(wh) >= set(RESEARCHER_VIEWS)

    assert migrate.upgrade(warehouse_url) == migrate.head()  # again: a no-op
    wh.create_schema()  # what every run does
    with wh.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM alembic_version")).scalar_one() == 1
    assert migrate.schema_diff(warehouse_url) == []


def test_a_table_change_without_a_migration_shows_as_drift(warehouse_url):
    migrate.upgrade(warehouse_url)
    wh = Warehouse(warehouse_url)
    changed = build_metadata(wh.dialect)
    changed.tables[next(iter(changed.tables))].append_column(Column("new_col", Integer))
    options = migrate.comparison_options(wh.dialect)
    options.pop("target_metadata")
    with wh.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts=options), changed)
    assert [d[0] for d in diff] == ["add_column"]


def test_a_warehouse_made_by_create_all_is_stamped_and_kept(warehouse_url):
    wh = Warehouse(warehouse_url)
    runs = wh.table("results", "model_runs")
    with wh.engine.begin() as conn:
        if wh.dialect == "postgresql":
            for layer in LAYERS:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{layer}"'))
        wh.metadata.create_all(conn)
        conn.execute(
            runs.insert().values(run_id="old", status="success", finished_at=datetime(2025, 1, 1))
        )
    assert migrate.current(warehouse_url) is None

    assert migrate.upgrade(warehouse_url) == migrate.head()
    assert migrate.schema_diff(warehouse_url) == []
    with wh.engine.connect() as conn:
        assert conn.execute(select(runs.c.run_id)).scalars().all() == ["old"]
        latest = "results__v_latest_run" if wh.dialect == "sqlite" else "results.v_latest_run"
        assert conn.execute(text(f"SELECT run_id FROM {latest}")).scalar_one() == "old"


def test_downgrade_to_base_and_up_again(warehouse_url):
    migrate.upgrade(warehouse_url)
    engine = create_engine(warehouse_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "base")
    probe = inspect(engine)
    names = [n for n in probe.get_table_names() if n != "alembic_version"]
    for layer in ("results", "core") if engine.dialect.name == "postgresql" else ():
        names += probe.get_table_names(schema=layer)
    assert names == []
    engine.dispose()
    assert migrate.upgrade(warehouse_url) == migrate.head()
    assert migrate.schema_diff(warehouse_url) == []


def test_concurrent_first_upgrades_migrate_once(warehouse_url):
    errors: list[BaseException] = []

    def work() -> None:
        try:
            migrate.upgrade(warehouse_url)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert migrate.current(warehouse_url) == migrate.head()
    wh = Warehouse(warehouse_url)
    with wh.engine.connect() as conn:
        rows = wh.table("results", "model_runs")
        assert conn.execute(select(func.count()).select_from(rows)).scalar_one() == 0


def run_db(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="relief")
    sub = parser.add_subparsers(dest="command", required=True)
    handlers = cli_db.add_commands(sub)
    args = parser.parse_args(argv)
    return handlers[args.command](args)


@pytest.mark.parametrize("engine", ["sqlite"])
def test_cli_db_upgrade_current_history(tmp_path, capsys, engine):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert run_db(["db", "current", "--warehouse", url]) == 0
    assert "not migrated yet" in capsys.readouterr().out
    assert run_db(["db", "upgrade", "--warehouse", url]) == 0
    assert f"<empty> -> {migrate.head()}" in capsys.readouterr().out
    assert run_db(["db", "upgrade", "--warehouse", url]) == 0
    assert "already at revision" in capsys.readouterr().out
    assert run_db(["db", "current", "--warehouse", url]) == 0
    assert capsys.readouterr().out.strip() == f"{migrate.head()} (head)"
    assert run_db(["db", "history"]) == 0
    out = capsys.readouterr().out
    assert "<base> -> 0001" in out and f"{migrate.head()} (head)" in out


def test_0007_sends_deliveries_staged_without_row_checks_back_to_ingest(warehouse_url):
    """A delivery staged before row checks at ingest has no row failures or rule counts:
    0007 marks it failed (the next ingest reloads it) and empties its staging rows."""
    assert migrate.upgrade(warehouse_url, "0006") == "0006"
    wh = Warehouse(warehouse_url)
    manifest, patients = wh.table("staging", "deliveries"), wh.table("staging", "patients")
    with wh.begin() as conn:
        for delivery_id, status in (("d-old", "loaded"), ("d-done", "promoted")):
            conn.execute(
                manifest.insert().values(
                    delivery_id=delivery_id, source="landing", path="p", sha256="s", status=status
                )
            )
        conn.execute(patients.insert().values(delivery_id="d-old", source_row=1, patient_key="k"))
    assert migrate.upgrade(warehouse_url) == migrate.head()
    rows = wh.read("staging", "deliveries").set_index("delivery_id")
    assert rows.loc["d-old", "status"] == "failed" and "relief ingest" in rows.loc["d-old", "error"]
    assert rows.loc["d-done", "status"] == "promoted"
    assert wh.read("staging", "patients").empty
