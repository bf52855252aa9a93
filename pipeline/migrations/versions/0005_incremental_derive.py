"""Incremental derive: the current episodes and what the derive stage keeps between nights.

Issue 8 (a night with 1 % new data costs about 1 % of a full run): the derive stage no
longer re-derives every patient each night. ``analysis.current_episodes`` holds every
patient's episodes as of the last derive, and a night replaces only the rows of the
patients its deliveries touched; ``analysis.derived_patients`` (each patient's core row
counts), ``analysis.derived_deliveries`` (deliveries already derived) and
``analysis.derive_state`` (the outcome definition used) say which patients those are
and when a full re-derive is due (pipeline/derive_stage.py, docs/decisions.md).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa

from pipeline.migrations.helpers import create_layer_table as _table
from pipeline.migrations.helpers import drop_layer_table

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None


def _episode_columns() -> list[sa.Column]:
    return [
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("patient_key", sa.String(64), nullable=False),
        sa.Column("series_no", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Text()),
        sa.Column("route", sa.String(8)),
        sa.Column("n_administrations", sa.Integer()),
        sa.Column("is_series", sa.Boolean()),
        sa.Column("dose_mg_per_kg", sa.Float()),
        sa.Column("infusion_min", sa.Float()),
        sa.Column("series_start", sa.DateTime()),
        sa.Column("origin", sa.DateTime()),
        sa.Column("baseline_score", sa.Float()),
        sa.Column("responded", sa.Boolean()),
        sa.Column("response_at", sa.DateTime()),
        sa.Column("event", sa.Integer()),
        sa.Column("time_days", sa.Float()),
        sa.Column("time_lower_days", sa.Float()),
        sa.Column("time_upper_days", sa.Float()),
        sa.Column("time_mid_days", sa.Float()),
        sa.Column("censor_reason", sa.String(16)),
        sa.Column("sex", sa.String(4)),
        sa.Column("age", sa.Integer()),
        sa.Column("primary_condition", sa.Text()),
        sa.Column("n_comorbidities", sa.Integer()),
        sa.Column("exclusion", sa.String(32)),
    ]


def upgrade() -> None:
    _table("analysis", "current_episodes", *_episode_columns(), index=("patient_key",))
    _table(
        "analysis",
        "derived_patients",
        sa.Column("patient_key", sa.String(64), primary_key=True),
        sa.Column("patient_rows", sa.Integer(), nullable=False),
        sa.Column("treatment_rows", sa.Integer(), nullable=False),
        sa.Column("assessment_rows", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
    )
    _table(
        "analysis",
        "derived_deliveries",
        sa.Column("delivery_id", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
    )
    _table(
        "analysis",
        "derive_state",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    for name in ("derive_state", "derived_deliveries", "derived_patients", "current_episodes"):
        drop_layer_table("analysis", name)
