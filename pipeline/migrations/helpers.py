"""What the migrations share: where a (layer, table) lives on each engine, and the SQL files.

PostgreSQL keeps each layer in its own schema (``results.cox``); SQLite has no schemas,
so the documented naming rule is ``<layer>__<table>`` (``results__cox``). These helpers
are the only place a migration decides that, so one migration serves both engines.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.migrate import SQL_DIR, for_dialect

LAYERS: tuple[str, ...] = ("staging", "quarantine", "core", "analysis", "results", "dq")


def dialect() -> str:
    return op.get_bind().dialect.name


def placed(layer: str, name: str) -> tuple[str, str | None]:
    """``(table name, schema)`` of ``layer.name`` on the migrating engine."""
    if dialect() == "sqlite":
        return f"{layer}__{name}", None
    return name, layer


def quoted(layer: str, name: str) -> str:
    """``layer.name`` as a quoted SQL table name on the migrating engine."""
    table, schema = placed(layer, name)
    return f'"{schema}"."{table}"' if schema else f'"{table}"'


def index_name(layer: str, name: str, column: str) -> str:
    """SQLAlchemy's default name for ``Column(index=True)``, so autogenerate sees no drift."""
    table, schema = placed(layer, name)
    return f"ix_{schema}_{table}_{column}" if schema else f"ix_{table}_{column}"


def create_schemas() -> None:
    if dialect() == "postgresql":
        for layer in LAYERS:
            op.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{layer}"'))


def create_layer_table(
    layer: str, name: str, *columns: sa.Column, index: tuple[str, ...] = ()
) -> None:
    """``op.create_table`` in the layer, plus one index per column in ``index``.

    A table that already exists is left alone: a warehouse made by ``create_all`` before
    migrations existed is adopted, and its missing tables are added.
    """
    table, schema = placed(layer, name)
    if sa.inspect(op.get_bind()).has_table(table, schema=schema):
        return
    op.create_table(table, *columns, schema=schema)
    for column in index:
        op.create_index(index_name(layer, name, column), table, [column], schema=schema)


def drop_layer_table(layer: str, name: str) -> None:
    table, schema = placed(layer, name)
    op.drop_table(table, schema=schema)


def run_sql_file(relative: str) -> None:
    """Execute one file under ``sql/``, with table names rewritten for SQLite.

    A file holds one statement for SQLite; PostgreSQL files may hold several (the
    driver runs them as one script). Names come from the file, never from input.
    """
    sql = for_dialect((SQL_DIR / relative).read_text(encoding="utf-8"), dialect())
    op.get_bind().exec_driver_sql(sql)


def create_views(names: tuple[str, ...]) -> None:
    """(Re)create the researcher views from ``sql/views/<name>.sql``, in the given order."""
    drop_views(tuple(reversed(names)))
    for name in names:
        run_sql_file(f"views/{name}.sql")


def drop_views(names: tuple[str, ...]) -> None:
    for name in names:
        view, schema = placed("results", name)
        target = f'"{schema}"."{view}"' if schema else f'"{view}"'
        op.get_bind().exec_driver_sql(f"DROP VIEW IF EXISTS {target}")
