"""Schema as code: the warehouse's Alembic migrations, run programmatically.

``upgrade(url)`` brings a warehouse (SQLite file or PostgreSQL database) to the newest
revision; every run calls it first (``Warehouse.create_schema``), and at head it is a
no-op. No ``alembic.ini`` is needed: the configuration is built here, and the scripts
live in ``pipeline/migrations/``.

Concurrency: on PostgreSQL the whole upgrade runs in one transaction behind an advisory
lock, so two runs starting together migrate once; on SQLite it runs inside
``BEGIN IMMEDIATE``, which serialises writers on the file the same way.

A warehouse created by ``metadata.create_all`` before migrations existed (tables but no
``alembic_version``) is adopted: stamped at the initial revision, then upgraded.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from pipeline.tables import LAYERS, build_metadata

log = logging.getLogger(__name__)

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
INITIAL_REVISION = "0001"
# pg_advisory_xact_lock key: "relief" in ASCII, so concurrent upgrades queue up.
_LOCK_KEY = 0x72656C696566
# Alembic's ``context``/``op`` proxies are process-global: one migration at a time per process.
# Re-entrant: ``upgrade`` holds it around its own ``current`` check too, so a thread never
# opens a second SQLite connection (and its journal-mode pragma) beside a running migration.
_PROCESS_LOCK = threading.RLock()

_LAYER_NAME = re.compile(r"\b(" + "|".join(LAYERS) + r")\.([A-Za-z_][A-Za-z0-9_]*)\b")


def for_dialect(sql: str, dialect: str) -> str:
    """SQL written with PostgreSQL names (``results.v_latest_cox``), for ``dialect``.

    SQLite's naming rule is ``<layer>__<table>``: ``layer.name`` becomes ``layer__name``
    when ``layer`` is one of the warehouse layers. The SQL comes from files in ``sql/``,
    never from user input; do not alias a table as a layer name (``... AS results``).
    """
    if dialect != "sqlite":
        return sql
    return _LAYER_NAME.sub(r"\1__\2", sql)


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration without an ini file; ``env.py`` uses ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = connection
    return config


def _include_name(name: str | None, type_: str, _parents: dict[str, Any]) -> bool:
    if type_ == "schema":
        return name is None or name in LAYERS
    return True


def comparison_options(dialect: str) -> dict[str, Any]:
    """How Alembic compares the database with ``build_metadata`` (env.py and the tests)."""
    return {
        "target_metadata": build_metadata(dialect),
        "include_schemas": dialect != "sqlite",
        "include_name": _include_name,
        "compare_type": True,
    }


def _engine(target: str | Engine) -> tuple[Engine, bool]:
    """An engine for ``target`` and whether we made it (and so must dispose of it)."""
    if isinstance(target, Engine):
        return target, False
    from pipeline.warehouse import Warehouse

    return Warehouse(target).engine, True


@contextmanager
def _migrating(target: str | Engine) -> Iterator[Connection]:
    """One locked transaction in which migrations run."""
    engine, owned = _engine(target)
    try:
        with _PROCESS_LOCK, engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                # pysqlite would only BEGIN before DML; take the write lock up front.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            yield conn
            conn.commit()
    finally:
        if owned:
            engine.dispose()


def head() -> str:
    head_revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head_revision is not None
    return head_revision


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _is_legacy(conn: Connection) -> bool:
    """Every table from before migrations (``create_all``) but no ``alembic_version``.

    A partial pre-migration schema is not stamped: the initial migration skips the
    tables that exist and creates the rest.
    """
    probe = inspect(conn)
    if probe.has_table("alembic_version"):
        return False
    tables = build_metadata(conn.dialect.name).tables.values()
    return all(probe.has_table(t.name, schema=t.schema) for t in tables)


def upgrade(target: str | Engine, revision: str = "head") -> str | None:
    """Migrate the warehouse at ``target`` (URL or engine) to ``revision``; returns the new one.

    Idempotent: at ``revision`` already, it only reads ``alembic_version``.
    """
    wanted = head() if revision == "head" else revision
    with _PROCESS_LOCK:
        if current(target) == wanted:
            return wanted
        return _upgrade(target, revision)


def _upgrade(target: str | Engine, revision: str) -> str | None:
    with _migrating(target) as conn:
        if _is_legacy(conn):
            log.warning(
                "adopting a warehouse made before migrations: stamping %s", INITIAL_REVISION
            )
            command.stamp(alembic_config(conn), INITIAL_REVISION)
        command.upgrade(alembic_config(conn), revision)
        new = _current(conn)
    log.info("warehouse at revision %s", new)
    return new


def stamp(target: str | Engine, revision: str) -> None:
    """Record ``revision`` as applied without running it (adopting a hand-made schema)."""
    with _migrating(target) as conn:
        command.stamp(alembic_config(conn), revision)


def current(target: str | Engine) -> str | None:
    """The warehouse's revision, or None when it has never been migrated."""
    engine, owned = _engine(target)
    try:
        with engine.connect() as conn:
            return _current(conn)
    finally:
        if owned:
            engine.dispose()


def history() -> list[tuple[str, str | None, str]]:
    """Every revision, oldest first: ``(revision, down_revision, first docstring line)``."""
    scripts = ScriptDirectory.from_config(alembic_config())
    rows = [
        (s.revision, s.down_revision, (s.doc or "").splitlines()[0] if s.doc else "")
        for s in scripts.walk_revisions()
    ]
    return [(rev, str(down) if down else None, doc) for rev, down, doc in reversed(rows)]


def schema_diff(target: str | Engine) -> list[Any]:
    """Alembic's autogenerate diff between the warehouse and ``build_metadata`` (empty = in sync)."""
    engine, owned = _engine(target)
    try:
        with engine.connect() as conn:
            options = comparison_options(conn.dialect.name)
            metadata = options.pop("target_metadata")
            context = MigrationContext.configure(conn, opts=options)
            return list(compare_metadata(context, metadata))
    finally:
        if owned:
            engine.dispose()
