"""Lean staging for bulk loads: no per-row source_file, BRIN delivery index, UNLOGGED.

Issue 3 (ingest within 2x a plain COPY): staging rows carried the landing file name on
every row (it is in the manifest's ``files`` JSON, one per table), and the B-tree on
``delivery_id`` roughly doubled the cost of COPY. On PostgreSQL the index becomes a BRIN
index (staging is appended a delivery at a time, so a min/max per block range finds a
delivery's rows) and the staging tables become UNLOGGED: no WAL is written for them.
Staging is reproducible from the landing files and the manifest; a server crash empties
unlogged tables, and validation then marks an unpromoted delivery failed so the next
ingest reloads it (``pipeline.validate.StagingLost``). SQLite keeps its B-tree index.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.migrations.helpers import dialect, index_name, placed

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None

STAGED: tuple[str, ...] = ("patients", "treatments", "pain_assessments", "adverse_events")


def _columns(table: str, schema: str | None) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table, schema=schema)}


def _index_kind(layer: str, name: str, using: str) -> None:
    table, schema = placed(layer, name)
    index = index_name(layer, name, "delivery_id")
    op.drop_index(index, table_name=table, schema=schema, if_exists=True)
    op.create_index(index, table, ["delivery_id"], schema=schema, postgresql_using=using)


def upgrade() -> None:
    for name in STAGED:
        table, schema = placed("staging", name)
        if "source_file" in _columns(table, schema):
            if dialect() == "sqlite":
                op.execute(sa.text(f'ALTER TABLE "{table}" DROP COLUMN source_file'))
            else:
                op.drop_column(table, "source_file", schema=schema)
        if dialect() == "postgresql":
            _index_kind("staging", name, "brin")
            op.execute(sa.text(f'ALTER TABLE "{schema}"."{table}" SET UNLOGGED'))


def downgrade() -> None:
    for name in STAGED:
        table, schema = placed("staging", name)
        if dialect() == "postgresql":
            op.execute(sa.text(f'ALTER TABLE "{schema}"."{table}" SET LOGGED'))
            _index_kind("staging", name, "btree")
        op.add_column(
            table,
            sa.Column("source_file", sa.Text(), nullable=False, server_default=""),
            schema=schema,
        )
