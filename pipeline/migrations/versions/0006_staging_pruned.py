"""Staging holds only deliveries not yet promoted, so it needs no ``delivery_id`` index.

Issue 3 (ingest within 2x a plain COPY): the BRIN index on ``staging.*.delivery_id``
cost about a fifth of the server's COPY time (one revmap lookup per inserted row;
docs/performance.md). It existed so that validation could find one delivery's rows in a
staging table that kept every delivery ever loaded. Validation now deletes a delivery's
staging rows in the transaction that promotes it (``pipeline.staging.prune``), so
staging holds only loaded-but-unvalidated and blocked deliveries, usually one, and a
sequential scan finds a delivery as fast as the index did. The index is dropped on
both engines (SQLite's was a B-tree).

Rows already promoted before this migration are deleted here, so an upgraded warehouse
starts as small as a new one.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.migrations.helpers import dialect, index_name, placed, quoted

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None

STAGED: tuple[str, ...] = ("patients", "treatments", "pain_assessments", "adverse_events")


def upgrade() -> None:
    manifest = quoted("staging", "deliveries")
    for name in STAGED:
        table, schema = placed("staging", name)
        op.drop_index(
            index_name("staging", name, "delivery_id"),
            table_name=table,
            schema=schema,
            if_exists=True,
        )
        op.execute(
            sa.text(
                f"DELETE FROM {quoted('staging', name)} WHERE delivery_id IN "
                f"(SELECT delivery_id FROM {manifest} WHERE status = 'promoted')"
            )
        )


def downgrade() -> None:
    # Promoted rows are not restored (the landing files and core hold them).
    for name in STAGED:
        table, schema = placed("staging", name)
        op.create_index(
            index_name("staging", name, "delivery_id"),
            table,
            ["delivery_id"],
            schema=schema,
            postgresql_using="brin" if dialect() == "postgresql" else None,
        )
