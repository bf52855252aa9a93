"""Promotion: a delivery's clean staging rows become typed core rows, in SQL.

Validation (``pipeline.validate``) decides which rows are clean and calls these inside
its transaction; the typing itself (casts, trimming, the natural key) is
``pipeline.typing_rules.core_columns``. Also here: the planner statistics PostgreSQL
needs before the cross-table rules and the next promotion join staging with core.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, func, select

from pipeline.schema import LANDING_TABLES, SOURCE_ROW
from pipeline.typing_rules import core_columns
from pipeline.warehouse import Warehouse


def promote(wh: Warehouse, conn: Connection, table: str, delivery_id: str) -> int:
    """Copy the delivery's unquarantined staging rows to core, typed, in SQL; returns the
    number of rows copied (validation checks it against what ingest loaded).

    Rows with a natural key already in core are replaced first: a corrected re-delivery
    wins. Keys are unique within a delivery (the GX suites quarantine duplicates).

    On PostgreSQL the core table is then ANALYZEd when it has no planner statistics yet
    or this promotion changed more than a tenth of it (autovacuum's default threshold;
    autovacuum may be off or behind). With them, the next delivery's replace step and
    cross-table rules look its keys up in the ``natural_key`` index; without them the
    planner guesses that a key matches many rows and scans all of core with a hash join.
    """
    staging, core = wh.table("staging", table), wh.table("core", table)
    q = wh.table("quarantine", "rows")
    if wh.dialect == "postgresql":  # offset-less timestamps are UTC, as in pandas
        conn.execute(select(func.set_config("TimeZone", "UTC", True)))
    typed = core_columns(table, staging, wh.dialect)
    quarantined = select(q.c.source_row).where(
        q.c.delivery_id == delivery_id, q.c.source_table == table, q.c.source_row.is_not(None)
    )
    clean = (staging.c.delivery_id == delivery_id) & staging.c[SOURCE_ROW].not_in(quarantined)
    changed = 0
    # A first load (empty core table) has nothing to replace.
    if conn.execute(select(core.c.natural_key).limit(1)).first() is not None:
        keys = select(typed["natural_key"]).where(clean)
        changed += conn.execute(delete(core).where(core.c.natural_key.in_(keys))).rowcount
    # SQLAlchemy reports an INSERT's row count only when asked to keep it (else -1).
    inserted = conn.execute(
        core.insert()
        .from_select(list(typed), select(*typed.values()).where(clean))
        .execution_options(preserve_rowcount=True)
    )
    changed += inserted.rowcount
    if wh.dialect != "postgresql":
        return inserted.rowcount
    name = conn.dialect.identifier_preparer.format_table(core)
    rows, analyzed = conn.exec_driver_sql(
        "SELECT reltuples, EXISTS (SELECT FROM pg_stats WHERE schemaname = %(schema)s"
        " AND tablename = %(table)s) FROM pg_class WHERE oid = %(name)s::regclass",
        {"schema": core.schema, "table": core.name, "name": name},
    ).one()
    if not analyzed or changed > 0.1 * max(rows, 0.0):
        conn.exec_driver_sql("RESET default_statistics_target")  # core's need to be good
        conn.exec_driver_sql(f"ANALYZE {name}")
    return inserted.rowcount


def analyze_staging(wh: Warehouse, conn: Connection) -> None:
    """Planner statistics for staging (PostgreSQL), before the cross-table rules join it
    with core: staging is bulk-loaded just before, never in time for autovacuum, so
    without them every delivery looks a few rows long and a large one would be checked
    (and promoted) by one core index lookup per row instead of a hash join. ANALYZE reads
    a fixed-size sample, however large: 3 000 rows here (statistics target 10, for this
    transaction), since what the planner needs of staging is how large the delivery is,
    which that sample tells as well as the default 30 000 (0.02 s against 0.23 s for
    10 M staged rows).
    """
    if wh.dialect != "postgresql":
        return
    conn.exec_driver_sql("SET LOCAL default_statistics_target = 10")
    for table in LANDING_TABLES:
        conn.exec_driver_sql(
            f"ANALYZE {conn.dialect.identifier_preparer.format_table(wh.table('staging', table))}"
        )
