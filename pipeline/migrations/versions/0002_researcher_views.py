"""Researcher views: results.v_latest_* (latest successful run, small cells suppressed).

The SQL lives in ``sql/views/<name>.sql`` so people can read it; the same file serves
PostgreSQL and SQLite (``results.v_latest_cox`` becomes ``results__v_latest_cox``). To
change a view, edit its file and add a migration that calls ``create_views`` for it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-15
"""

from __future__ import annotations

from pipeline.migrations.helpers import create_views, drop_views

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None

# Dependency order: every view joins v_latest_run.
VIEWS: tuple[str, ...] = (
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


def upgrade() -> None:
    create_views(VIEWS)


def downgrade() -> None:
    drop_views(tuple(reversed(VIEWS)))
