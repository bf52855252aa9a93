"""Initial warehouse: every layer's tables as ``tables.py`` defined them at 0.1.0.

A frozen snapshot written as explicit ``create_table`` calls (it must not import
``build_metadata``, which keeps changing); ``tests/warehouse/test_migrations.py`` proves
that head still equals ``build_metadata`` on SQLite and PostgreSQL.

Revision ID: 0001
Revises:
Create Date: 2026-01-15
"""

from __future__ import annotations

import sqlalchemy as sa

from pipeline.migrations.helpers import create_layer_table as _table
from pipeline.migrations.helpers import create_schemas, drop_layer_table

revision: str = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_schemas()
    _staging_and_core()
    _results()


def _staging_and_core() -> None:
    _table(
        "staging",
        "deliveries",
        sa.Column("delivery_id", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("files", sa.Text()),
        sa.Column("rows", sa.Integer()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("started_at", sa.DateTime()),
        sa.Column("finished_at", sa.DateTime()),
    )
    _table(
        "staging",
        "patients",
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("source_file", sa.Text(), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("patient_key", sa.String(64)),
        sa.Column("sex", sa.Text()),
        sa.Column("birth_year", sa.Text()),
        sa.Column("primary_condition", sa.Text()),
        sa.Column("comorbidities", sa.Text()),
        sa.Column("site_id", sa.Text()),
        sa.Column("extra", sa.Text()),
        index=("delivery_id",),
    )
    _table(
        "core",
        "patients",
        sa.Column("patient_key", sa.Text()),
        sa.Column("sex", sa.Text()),
        sa.Column("birth_year", sa.Integer()),
        sa.Column("primary_condition", sa.Text()),
        sa.Column("comorbidities", sa.Text()),
        sa.Column("site_id", sa.Text()),
        sa.Column("natural_key", sa.Text(), nullable=False),
        sa.Column("delivery_id", sa.String(64)),
        sa.Column("source_row", sa.Integer()),
        index=("natural_key",),
    )
    _table(
        "staging",
        "treatments",
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("source_file", sa.Text(), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("patient_key", sa.String(64)),
        sa.Column("treatment_id", sa.Text()),
        sa.Column("administered_at", sa.Text()),
        sa.Column("duration_min", sa.Text()),
        sa.Column("route", sa.Text()),
        sa.Column("dose_mg", sa.Text()),
        sa.Column("weight_kg", sa.Text()),
        sa.Column("extra", sa.Text()),
        index=("delivery_id",),
    )
    _table(
        "core",
        "treatments",
        sa.Column("treatment_id", sa.Text()),
        sa.Column("patient_key", sa.Text()),
        sa.Column("administered_at", sa.DateTime()),
        sa.Column("duration_min", sa.Float()),
        sa.Column("route", sa.Text()),
        sa.Column("dose_mg", sa.Float()),
        sa.Column("weight_kg", sa.Float()),
        sa.Column("natural_key", sa.Text(), nullable=False),
        sa.Column("delivery_id", sa.String(64)),
        sa.Column("source_row", sa.Integer()),
        index=("natural_key",),
    )
    _table(
        "staging",
        "pain_assessments",
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("source_file", sa.Text(), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("patient_key", sa.String(64)),
        sa.Column("assessment_id", sa.Text()),
        sa.Column("assessed_at", sa.Text()),
        sa.Column("pain_score", sa.Text()),
        sa.Column("extra", sa.Text()),
        index=("delivery_id",),
    )
    _table(
        "core",
        "pain_assessments",
        sa.Column("assessment_id", sa.Text()),
        sa.Column("patient_key", sa.Text()),
        sa.Column("assessed_at", sa.DateTime()),
        sa.Column("pain_score", sa.Integer()),
        sa.Column("natural_key", sa.Text(), nullable=False),
        sa.Column("delivery_id", sa.String(64)),
        sa.Column("source_row", sa.Integer()),
        index=("natural_key",),
    )
    _table(
        "staging",
        "adverse_events",
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("source_file", sa.Text(), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("patient_key", sa.String(64)),
        sa.Column("treatment_id", sa.Text()),
        sa.Column("recorded_at", sa.Text()),
        sa.Column("event", sa.Text()),
        sa.Column("severity", sa.Text()),
        sa.Column("extra", sa.Text()),
        index=("delivery_id",),
    )
    _table(
        "core",
        "adverse_events",
        sa.Column("treatment_id", sa.Text()),
        sa.Column("patient_key", sa.Text()),
        sa.Column("recorded_at", sa.DateTime()),
        sa.Column("event", sa.Text()),
        sa.Column("severity", sa.Text()),
        sa.Column("natural_key", sa.Text(), nullable=False),
        sa.Column("delivery_id", sa.String(64)),
        sa.Column("source_row", sa.Integer()),
        index=("natural_key",),
    )
    _table(
        "quarantine",
        "rows",
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("source_table", sa.String(32), nullable=False),
        sa.Column("source_file", sa.Text()),
        sa.Column("source_row", sa.Integer()),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("column_name", sa.Text()),
        sa.Column("value", sa.Text()),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(64)),
        index=("delivery_id",),
    )
    _table(
        "dq",
        "validation_results",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("source_table", sa.String(32), nullable=False),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("rows_checked", sa.Integer()),
        sa.Column("rows_failed", sa.Integer()),
        sa.Column("success", sa.Boolean()),
        index=("run_id",),
    )
    _table(
        "analysis",
        "episodes",
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
        index=("run_id",),
    )


def _results() -> None:
    _table(
        "results",
        "model_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("dag_run_id", sa.Text()),
        sa.Column("trigger", sa.String(16)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("parameters", sa.Text()),
        sa.Column("row_counts", sa.Text()),
        sa.Column("timings", sa.Text()),
        sa.Column("input_fingerprint", sa.Text()),
        sa.Column("code_version", sa.Text()),
        sa.Column("report_path", sa.Text()),
        sa.Column("error", sa.Text()),
        sa.Column("started_at", sa.DateTime()),
        sa.Column("finished_at", sa.DateTime()),
    )
    _table(
        "results",
        "km_curves",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("grouping", sa.String(32), nullable=False),
        sa.Column("group_value", sa.Text(), nullable=False),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("survival", sa.Float()),
        sa.Column("lower", sa.Float()),
        sa.Column("upper", sa.Float()),
        sa.Column("at_risk", sa.Integer()),
        sa.Column("events", sa.Integer()),
        sa.Column("censored", sa.Integer()),
        index=("run_id",),
    )
    _table(
        "results",
        "survival_summary",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("grouping", sa.String(32), nullable=False),
        sa.Column("group_value", sa.Text(), nullable=False),
        sa.Column("n", sa.Integer()),
        sa.Column("events", sa.Integer()),
        sa.Column("median", sa.Float()),
        sa.Column("median_lower", sa.Float()),
        sa.Column("median_upper", sa.Float()),
        index=("run_id",),
    )
    _table(
        "results",
        "landmarks",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("grouping", sa.String(32), nullable=False),
        sa.Column("group_value", sa.Text(), nullable=False),
        sa.Column("day", sa.Float()),
        sa.Column("survival", sa.Float()),
        sa.Column("lower", sa.Float()),
        sa.Column("upper", sa.Float()),
        index=("run_id",),
    )
    _table(
        "results",
        "logrank",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("grouping", sa.String(32), nullable=False),
        sa.Column("statistic", sa.Float()),
        sa.Column("df", sa.Integer()),
        sa.Column("p", sa.Float()),
        index=("run_id",),
    )
    _table(
        "results",
        "cox",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("model", sa.String(32), nullable=False),
        sa.Column("term", sa.Text(), nullable=False),
        sa.Column("coef", sa.Float()),
        sa.Column("se", sa.Float()),
        sa.Column("hr", sa.Float()),
        sa.Column("hr_lower", sa.Float()),
        sa.Column("hr_upper", sa.Float()),
        sa.Column("z", sa.Float()),
        sa.Column("p", sa.Float()),
        sa.Column("n", sa.Integer()),
        sa.Column("events", sa.Integer()),
        index=("run_id",),
    )
    _table(
        "results",
        "rmst",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("grouping", sa.String(32), nullable=False),
        sa.Column("group_value", sa.Text(), nullable=False),
        sa.Column("horizon", sa.Float()),
        sa.Column("rmst", sa.Float()),
        sa.Column("se", sa.Float()),
        sa.Column("lower", sa.Float()),
        sa.Column("upper", sa.Float()),
        index=("run_id",),
    )
    _table(
        "results",
        "response_rates",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("grouping", sa.String(32), nullable=False),
        sa.Column("group_value", sa.Text(), nullable=False),
        sa.Column("episodes", sa.Integer()),
        sa.Column("with_baseline", sa.Integer()),
        sa.Column("responders", sa.Integer()),
        sa.Column("response_rate", sa.Float()),
        index=("run_id",),
    )
    _table(
        "results",
        "adverse_event_rates",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("route", sa.String(8)),
        sa.Column("dose_band", sa.String(16)),
        sa.Column("event", sa.Text()),
        sa.Column("administrations", sa.Integer()),
        sa.Column("with_event", sa.Integer()),
        sa.Column("rate", sa.Float()),
        index=("run_id",),
    )
    _table(
        "results",
        "attrition",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("remaining", sa.Integer()),
        sa.Column("excluded", sa.Integer()),
        index=("run_id",),
    )
    _table(
        "results",
        "rmst_difference",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("grouping", sa.String(32), nullable=False),
        sa.Column("group_value", sa.Text(), nullable=False),
        sa.Column("reference", sa.Text()),
        sa.Column("horizon", sa.Float()),
        sa.Column("difference", sa.Float()),
        sa.Column("lower", sa.Float()),
        sa.Column("upper", sa.Float()),
        sa.Column("p", sa.Float()),
        index=("run_id",),
    )
    _table(
        "results",
        "ph_test",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("model", sa.String(32), nullable=False),
        sa.Column("term", sa.Text(), nullable=False),
        sa.Column("statistic", sa.Float()),
        sa.Column("df", sa.Float()),
        sa.Column("p", sa.Float()),
        sa.Column("violated", sa.Boolean()),
        index=("run_id",),
    )
    _table(
        "results",
        "dose_response",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("variable", sa.String(32), nullable=False),
        sa.Column("value", sa.Float()),
        sa.Column("hr", sa.Float()),
        sa.Column("hr_lower", sa.Float()),
        sa.Column("hr_upper", sa.Float()),
        index=("run_id",),
    )
    _table(
        "results",
        "turnbull",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("grouping", sa.String(32), nullable=False),
        sa.Column("group_value", sa.Text(), nullable=False),
        sa.Column("time", sa.Float()),
        sa.Column("survival", sa.Float()),
        index=("run_id",),
    )
    _table(
        "results",
        "interval_weibull",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("grouping", sa.String(32), nullable=False),
        sa.Column("group_value", sa.Text(), nullable=False),
        sa.Column("shape", sa.Float()),
        sa.Column("scale", sa.Float()),
        sa.Column("shape_lower", sa.Float()),
        sa.Column("shape_upper", sa.Float()),
        sa.Column("scale_lower", sa.Float()),
        sa.Column("scale_upper", sa.Float()),
        sa.Column("median", sa.Float()),
        sa.Column("n", sa.Integer()),
        index=("run_id",),
    )
    _table(
        "results",
        "interval_cox",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("term", sa.Text(), nullable=False),
        sa.Column("ph_coef", sa.Float()),
        sa.Column("ph_se", sa.Float()),
        sa.Column("ph_lower", sa.Float()),
        sa.Column("ph_upper", sa.Float()),
        sa.Column("p", sa.Float()),
        index=("run_id",),
    )
    _table(
        "results",
        "competing_risks",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("cause", sa.String(32), nullable=False),
        sa.Column("day", sa.Float()),
        sa.Column("cif", sa.Float()),
        sa.Column("lower", sa.Float()),
        sa.Column("upper", sa.Float()),
        index=("run_id",),
    )
    _table(
        "results",
        "cox_baseline",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("model", sa.String(32), nullable=False),
        sa.Column("stratum", sa.Text()),
        sa.Column("time", sa.Float()),
        sa.Column("cumhaz", sa.Float()),
        index=("run_id",),
    )
    _table(
        "results",
        "cox_means",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("model", sa.String(32), nullable=False),
        sa.Column("term", sa.Text(), nullable=False),
        sa.Column("mean", sa.Float()),
        index=("run_id",),
    )


TABLES: tuple[tuple[str, str], ...] = (
    ("staging", "deliveries"),
    ("staging", "patients"),
    ("core", "patients"),
    ("staging", "treatments"),
    ("core", "treatments"),
    ("staging", "pain_assessments"),
    ("core", "pain_assessments"),
    ("staging", "adverse_events"),
    ("core", "adverse_events"),
    ("quarantine", "rows"),
    ("dq", "validation_results"),
    ("analysis", "episodes"),
    ("results", "model_runs"),
    ("results", "km_curves"),
    ("results", "survival_summary"),
    ("results", "landmarks"),
    ("results", "logrank"),
    ("results", "cox"),
    ("results", "rmst"),
    ("results", "response_rates"),
    ("results", "adverse_event_rates"),
    ("results", "attrition"),
    ("results", "rmst_difference"),
    ("results", "ph_test"),
    ("results", "dose_response"),
    ("results", "turnbull"),
    ("results", "interval_weibull"),
    ("results", "interval_cox"),
    ("results", "competing_risks"),
    ("results", "cox_baseline"),
    ("results", "cox_means"),
)


def downgrade() -> None:
    for layer, name in reversed(TABLES):
        drop_layer_table(layer, name)
