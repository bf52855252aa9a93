"""Staging keeps only what is not yet in core: a delivery's rows leave when it is promoted.

Staging is a bulk-load buffer, not history (the landing files, the manifest and core hold
that). Keeping it small is what lets its tables go without a ``delivery_id`` index
(migration 0006): maintaining one cost about a fifth of the server's COPY time, and a
sequential scan of a staging table that holds one or two deliveries finds a delivery's
rows as fast as the index did. Blocked deliveries keep their rows until re-delivered.
"""

from __future__ import annotations

from sqlalchemy import Connection, Table, delete, func, select, text
from sqlalchemy.exc import DBAPIError

from pipeline.schema import LANDING_TABLES
from pipeline.warehouse import Warehouse

# Manifest states whose staging rows must survive another delivery's promotion.
KEEPS_ROWS: tuple[str, ...] = ("loaded", "blocked")
# Staging tables that hold a delivery's rows: the landing tables and what ingest's row
# checks found in them (pipeline/row_checks.py).
STAGED_WITH_ROWS: tuple[str, ...] = (*LANDING_TABLES, "row_failures", "patient_refs")


def prune(wh: Warehouse, conn: Connection, delivery_id: str) -> None:
    """Delete a promoted delivery's staging rows (and their row-check failures), in the
    caller's (promotion) transaction.

    On PostgreSQL, when no other delivery has rows to keep, the staging tables are
    truncated instead: a DELETE of 10 M rows takes ~5 s, TRUNCATE milliseconds. The lock
    TRUNCATE needs is taken with NOWAIT inside a savepoint, so a concurrent ingest or
    validation is never waited for (nor deadlocked with): it just means the DELETE path.
    The manifest is read after the lock is held, so a delivery loaded meanwhile is seen.
    """
    tables = [wh.table("staging", name) for name in STAGED_WITH_ROWS]
    if wh.dialect == "postgresql" and _truncated(wh, conn, delivery_id, tables):
        return
    for table in tables:
        conn.execute(delete(table).where(table.c.delivery_id == delivery_id))


def _truncated(wh: Warehouse, conn: Connection, delivery_id: str, tables: list[Table]) -> bool:
    names = ", ".join(conn.dialect.identifier_preparer.format_table(t) for t in tables)
    manifest = wh.table("staging", "deliveries")
    savepoint = conn.begin_nested()
    try:
        conn.execute(text(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE NOWAIT"))
    except DBAPIError:  # lock_not_available: someone is loading or reading staging
        savepoint.rollback()
        return False
    others = conn.execute(
        select(func.count())
        .select_from(manifest)
        .where(manifest.c.status.in_(KEEPS_ROWS), manifest.c.delivery_id != delivery_id)
    ).scalar_one()
    if others:
        savepoint.rollback()
        return False
    conn.execute(text(f"TRUNCATE {names}"))
    savepoint.commit()
    return True
