"""Read-only researcher role relief_researcher (PostgreSQL; a no-op on SQLite).

Grants in ``sql/roles/researcher.sql``: USAGE and SELECT on results and dq (and default
privileges for later tables), nothing on staging, quarantine, core or analysis. The
migrating user needs CREATEROLE the first time the role is created in a cluster.

Revision ID: 0003
Revises: 0002
Create Date: 2026-01-15
"""

from __future__ import annotations

from pipeline.migrations.helpers import dialect, run_sql_file

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if dialect() == "postgresql":
        run_sql_file("roles/researcher.sql")


def downgrade() -> None:
    if dialect() == "postgresql":
        run_sql_file("roles/revoke_researcher.sql")
