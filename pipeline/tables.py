"""The warehouse's tables, defined once for SQLite and PostgreSQL.

Layers follow design.md: staging -> quarantine -> core -> analysis -> results, plus dq.
PostgreSQL keeps each layer in its own schema (``core.treatments``); SQLite has no
schemas, so the same table is named ``core__treatments`` there (layer, two
underscores, table). ``Warehouse.table(layer, name)`` hides the difference.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from pipeline.schema import CORE_COLUMNS, LANDING_REQUIRED, PATIENT_KEY

LAYERS: tuple[str, ...] = ("staging", "quarantine", "core", "analysis", "results", "dq")

TableFactory = Callable[..., Table]


def _typed(name: str) -> Column:
    """The column type a core column gets after validation."""
    if name.endswith("_at"):
        return Column(name, DateTime)
    if name in ("birth_year", "pain_score"):
        return Column(name, Integer)
    if name in ("duration_min", "dose_mg", "weight_kg"):
        return Column(name, Float)
    return Column(name, Text)


def _run_columns() -> list[Column]:
    return [Column("run_id", String(64), nullable=False, index=True)]


def define_tables(metadata: MetaData, make: TableFactory) -> None:
    """Declare every table; ``make(layer, name, *columns)`` places it in its layer."""
    make(
        "staging",
        "deliveries",
        Column("delivery_id", String(64), primary_key=True),
        Column("source", String(32), nullable=False),
        Column("path", Text, nullable=False),
        Column("sha256", String(64), nullable=False),
        Column("files", Text),  # JSON: {table: {file, sha256, rows, rules}}
        Column("rows", Integer),
        Column("status", String(16), nullable=False),  # loading|loaded|failed|promoted|blocked
        Column("error", Text),
        Column("started_at", DateTime),
        Column("finished_at", DateTime),
    )
    for table, required in LANDING_REQUIRED.items():
        landing_cols = [c for c in required if c != "patient_id"]
        cols = [Column(c, Text) for c in landing_cols]
        if "patient_id" in required:
            cols.insert(0, Column(PATIENT_KEY, String(64)))
        make(
            "staging",
            table,
            # No index: staging holds only unpromoted deliveries (pipeline/staging.py), and
            # an index would slow every COPY (migration 0006). UNLOGGED on PostgreSQL (0004).
            Column("delivery_id", String(64), nullable=False),
            Column("source_row", Integer, nullable=False),
            *cols,
            Column("extra", Text),  # JSON of columns beyond the contract, kept not rejected
        )
        core_cols = [_typed(c) for c in CORE_COLUMNS[table]]
        make(
            "core",
            table,
            *core_cols,
            Column("natural_key", Text, nullable=False, index=True),  # see typing_rules.natural_key
            Column("delivery_id", String(64)),
            Column("source_row", Integer),
        )
    make(
        "staging",
        "row_failures",
        # What ingest's GX row checks found (pipeline/row_checks.py); validation copies
        # these into quarantine.rows. Pruned with the delivery's staging rows.
        Column("delivery_id", String(64), nullable=False),
        Column("source_table", String(32), nullable=False),
        Column("source_row", Integer, nullable=False),
        Column("rule_id", Text, nullable=False),
        Column("column_name", Text),
        Column("value", Text),
        Column("message", Text, nullable=False),
    )
    make(
        "staging",
        "patient_refs",
        # The distinct patients each staged table refers to (pipeline/row_checks.py): the
        # "known patient" rule checks these before it looks at any row.
        Column("delivery_id", String(64), nullable=False),
        Column("source_table", String(32), nullable=False),
        Column(PATIENT_KEY, String(64), nullable=False),
    )
    make(
        "quarantine",
        "rows",
        Column("delivery_id", String(64), nullable=False, index=True),
        Column("source_table", String(32), nullable=False),
        Column("source_file", Text),
        Column("source_row", Integer),
        Column("rule_id", Text, nullable=False),
        Column("column_name", Text),
        Column("value", Text),
        Column("message", Text, nullable=False),
        Column("run_id", String(64)),
    )
    make(
        "dq",
        "validation_results",
        *_run_columns(),
        Column("delivery_id", String(64), nullable=False),
        Column("source_table", String(32), nullable=False),
        Column("rule_id", Text, nullable=False),
        Column("rows_checked", Integer),
        Column("rows_failed", Integer),
        Column("success", Boolean),
    )
    make("analysis", "episodes", *_run_columns(), *_episode_columns())
    _define_derive_state(make)
    _define_results(make)


def _episode_columns(index_patient: bool = False) -> list[Column]:
    """The columns of an episode row (schema.EPISODE_COLUMNS), typed."""
    return [
        Column(PATIENT_KEY, String(64), nullable=False, index=index_patient),
        Column("series_no", Integer, nullable=False),
        Column("site_id", Text),
        Column("route", String(8)),
        Column("n_administrations", Integer),
        Column("is_series", Boolean),
        Column("dose_mg_per_kg", Float),
        Column("infusion_min", Float),
        Column("series_start", DateTime),
        Column("origin", DateTime),
        Column("baseline_score", Float),
        Column("responded", Boolean),
        Column("response_at", DateTime),
        Column("event", Integer),
        Column("time_days", Float),
        Column("time_lower_days", Float),
        Column("time_upper_days", Float),
        Column("time_mid_days", Float),
        Column("censor_reason", String(16)),
        Column("sex", String(4)),
        Column("age", Integer),
        Column("primary_condition", Text),
        Column("n_comorbidities", Integer),
        Column("exclusion", String(32)),
    ]


def _define_derive_state(make: TableFactory) -> None:
    """What the incremental derive keeps between nights (pipeline/derive_stage.py).

    ``current_episodes`` holds every patient's episodes as of the last derive; a night
    replaces only the rows of the patients its deliveries touched. ``derived_patients``
    keeps each patient's core row counts (a row moved to another patient or deleted
    changes them), ``derived_deliveries`` the deliveries already folded in, and
    ``derive_state`` the outcome definition the episodes were derived with.
    """
    make(
        "analysis",
        "current_episodes",
        Column("run_id", String(64), nullable=False),  # the run that derived the patient
        *_episode_columns(index_patient=True),
    )
    make(
        "analysis",
        "derived_patients",
        Column(PATIENT_KEY, String(64), primary_key=True),
        Column("patient_rows", Integer, nullable=False),
        Column("treatment_rows", Integer, nullable=False),
        Column("assessment_rows", Integer, nullable=False),
        Column("run_id", String(64), nullable=False),
    )
    make(
        "analysis",
        "derived_deliveries",
        Column("delivery_id", String(64), primary_key=True),
        Column("run_id", String(64), nullable=False),
    )
    make(
        "analysis",
        "derive_state",
        Column("run_id", String(64), primary_key=True),
        Column("mode", String(16), nullable=False),  # full | incremental
        Column("outcome", Text, nullable=False),  # JSON of the OutcomeDefinition
    )


def _define_results(make: TableFactory) -> None:
    make(
        "results",
        "model_runs",
        Column("run_id", String(64), primary_key=True),
        Column("dag_run_id", Text),
        Column("trigger", String(16)),  # cli | schedule | analyst | test
        Column("status", String(16), nullable=False),  # running|success|no_refit|failed
        Column("parameters", Text),  # JSON
        Column("row_counts", Text),  # JSON {stage: {...}}
        Column("timings", Text),  # JSON {stage: seconds}
        Column("input_fingerprint", Text),
        Column("code_version", Text),
        Column("report_path", Text),
        Column("error", Text),
        Column("started_at", DateTime),
        Column("finished_at", DateTime),
    )
    make(
        "results",
        "km_curves",
        *_run_columns(),
        Column("grouping", String(32), nullable=False),
        Column("group_value", Text, nullable=False),
        Column("time", Float, nullable=False),
        Column("survival", Float),
        Column("lower", Float),
        Column("upper", Float),
        Column("at_risk", Integer),
        Column("events", Integer),
        Column("censored", Integer),
    )
    make(
        "results",
        "survival_summary",
        *_run_columns(),
        Column("grouping", String(32), nullable=False),
        Column("group_value", Text, nullable=False),
        Column("n", Integer),
        Column("events", Integer),
        Column("median", Float),
        Column("median_lower", Float),
        Column("median_upper", Float),
    )
    make(
        "results",
        "landmarks",
        *_run_columns(),
        Column("grouping", String(32), nullable=False),
        Column("group_value", Text, nullable=False),
        Column("day", Float),
        Column("survival", Float),
        Column("lower", Float),
        Column("upper", Float),
    )
    make(
        "results",
        "logrank",
        *_run_columns(),
        Column("grouping", String(32), nullable=False),
        Column("statistic", Float),
        Column("df", Integer),
        Column("p", Float),
    )
    make(
        "results",
        "cox",
        *_run_columns(),
        Column("model", String(32), nullable=False),
        Column("term", Text, nullable=False),
        Column("coef", Float),
        Column("se", Float),
        Column("hr", Float),
        Column("hr_lower", Float),
        Column("hr_upper", Float),
        Column("z", Float),
        Column("p", Float),
        Column("n", Integer),
        Column("events", Integer),
    )
    make(
        "results",
        "rmst",
        *_run_columns(),
        Column("grouping", String(32), nullable=False),
        Column("group_value", Text, nullable=False),
        Column("horizon", Float),
        Column("rmst", Float),
        Column("se", Float),
        Column("lower", Float),
        Column("upper", Float),
    )
    make(
        "results",
        "response_rates",
        *_run_columns(),
        Column("grouping", String(32), nullable=False),
        Column("group_value", Text, nullable=False),
        Column("episodes", Integer),
        Column("with_baseline", Integer),
        Column("responders", Integer),
        Column("response_rate", Float),
    )
    make(
        "results",
        "adverse_event_rates",
        *_run_columns(),
        Column("route", String(8)),
        Column("dose_band", String(16)),
        Column("event", Text),
        Column("administrations", Integer),
        Column("with_event", Integer),
        Column("rate", Float),
    )
    make(
        "results",
        "attrition",
        *_run_columns(),
        Column("step", Integer, nullable=False),
        Column("description", Text, nullable=False),
        Column("remaining", Integer),
        Column("excluded", Integer),
    )


def _define_sensitivity_results(make: TableFactory) -> None:
    """Secondary analyses: PH diagnostics, dose-response, interval censoring, competing risks."""
    grouped = (
        Column("grouping", String(32), nullable=False),
        Column("group_value", Text, nullable=False),
    )
    make(
        "results",
        "rmst_difference",
        *_run_columns(),
        Column("grouping", String(32), nullable=False),
        Column("group_value", Text, nullable=False),
        Column("reference", Text),
        Column("horizon", Float),
        Column("difference", Float),
        Column("lower", Float),
        Column("upper", Float),
        Column("p", Float),
    )
    make(
        "results",
        "ph_test",
        *_run_columns(),
        Column("model", String(32), nullable=False),
        Column("term", Text, nullable=False),
        Column("statistic", Float),
        Column("df", Float),
        Column("p", Float),
        Column("violated", Boolean),
    )
    make(
        "results",
        "dose_response",
        *_run_columns(),
        Column("variable", String(32), nullable=False),
        Column("value", Float),
        Column("hr", Float),
        Column("hr_lower", Float),
        Column("hr_upper", Float),
    )
    make(
        "results",
        "turnbull",
        *_run_columns(),
        *[c.copy() for c in grouped],
        Column("time", Float),
        Column("survival", Float),
    )
    make(
        "results",
        "interval_weibull",
        *_run_columns(),
        *[c.copy() for c in grouped],
        Column("shape", Float),
        Column("scale", Float),
        Column("shape_lower", Float),
        Column("shape_upper", Float),
        Column("scale_lower", Float),
        Column("scale_upper", Float),
        Column("median", Float),
        Column("n", Integer),
    )
    make(
        "results",
        "interval_cox",
        *_run_columns(),
        Column("term", Text, nullable=False),
        Column("ph_coef", Float),
        Column("ph_se", Float),
        Column("ph_lower", Float),
        Column("ph_upper", Float),
        Column("p", Float),
    )
    make(
        "results",
        "competing_risks",
        *_run_columns(),
        Column("cause", String(32), nullable=False),
        Column("day", Float),
        Column("cif", Float),
        Column("lower", Float),
        Column("upper", Float),
    )
    make(
        "results",
        "cox_baseline",
        *_run_columns(),
        Column("model", String(32), nullable=False),
        Column("stratum", Text),
        Column("time", Float),
        Column("cumhaz", Float),
    )
    make(
        "results",
        "cox_means",
        *_run_columns(),
        Column("model", String(32), nullable=False),
        Column("term", Text, nullable=False),
        Column("mean", Float),
    )


def sqlite_name(layer: str, name: str) -> str:
    """SQLite's stand-in for ``layer.name``: the documented naming rule."""
    return f"{layer}__{name}"


def build_metadata(dialect: str) -> MetaData:
    """All tables for one SQL dialect, keyed in ``metadata.tables`` by their real name."""
    metadata = MetaData()

    def make(layer: str, name: str, *columns: Column) -> Table:
        if dialect == "sqlite":
            return Table(sqlite_name(layer, name), metadata, *columns)
        return Table(name, metadata, *columns, schema=layer)

    define_tables(metadata, make)
    _define_sensitivity_results(make)
    return metadata
