"""Row checks at ingest: what the GX suites found is staged with the rows.

Issue 4 (validating 10 M rows must take less time than ingesting them): validation no
longer reads a delivery's staging rows back to run the GX suites; ingest runs them on
the rows as it streams them in (``pipeline.row_checks``) and stages the failing rows in
``staging.row_failures`` and each rule's counts in the manifest's ``files`` JSON; the
distinct patients each table refers to go to ``staging.patient_refs``, so the "known
patient" rule checks 100 000 patients, not 10 M rows, when none is unknown.

A delivery staged before this migration has neither, so it cannot be validated. Each
one still ``loaded`` or ``blocked`` is marked ``failed`` here, with the reason, and its
staging rows are deleted: the next ingest of its folder loads and checks it again, as
after a crash emptied staging (``pipeline.validate.StagingLost``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.migrations.helpers import create_layer_table, drop_layer_table, quoted

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels = None
depends_on = None

STAGED: tuple[str, ...] = ("patients", "treatments", "pain_assessments", "adverse_events")
RESTAGE = (
    "staged by a relief version without row checks at ingest (migration 0007); "
    "run `relief ingest` again to load and check it"
)


def upgrade() -> None:
    create_layer_table(
        "staging",
        "row_failures",
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("source_table", sa.String(32), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("column_name", sa.Text()),
        sa.Column("value", sa.Text()),
        sa.Column("message", sa.Text(), nullable=False),
    )
    create_layer_table(
        "staging",
        "patient_refs",
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("source_table", sa.String(32), nullable=False),
        sa.Column("patient_key", sa.String(64), nullable=False),
    )
    manifest = quoted("staging", "deliveries")
    pending = f"SELECT delivery_id FROM {manifest} WHERE status IN ('loaded', 'blocked')"
    for name in STAGED:
        op.execute(
            sa.text(f"DELETE FROM {quoted('staging', name)} WHERE delivery_id IN ({pending})")
        )
    op.execute(
        sa.text(
            f"UPDATE {manifest} SET status = 'failed', error = :why "
            "WHERE status IN ('loaded', 'blocked')"
        ).bindparams(why=RESTAGE)
    )


def downgrade() -> None:
    drop_layer_table("staging", "patient_refs")
    drop_layer_table("staging", "row_failures")
