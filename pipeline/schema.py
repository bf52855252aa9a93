"""Column names of every frame that crosses a stage boundary, in one place.

Stages refer to these constants instead of repeating string literals, so a
renamed column is a one-line change and a typo is an import error.
"""

from __future__ import annotations

# --- landing contract (design.md) -------------------------------------------------
LANDING_REQUIRED: dict[str, tuple[str, ...]] = {
    "patients": (
        "patient_id",
        "sex",
        "birth_year",
        "primary_condition",
        "comorbidities",
        "site_id",
    ),
    "treatments": (
        "treatment_id",
        "patient_id",
        "administered_at",
        "duration_min",
        "route",
        "dose_mg",
        "weight_kg",
    ),
    "pain_assessments": ("assessment_id", "patient_id", "assessed_at", "pain_score"),
    "adverse_events": ("treatment_id", "patient_id", "recorded_at", "event", "severity"),
}
OPTIONAL_TABLES: frozenset[str] = frozenset({"adverse_events"})
LANDING_TABLES: tuple[str, ...] = tuple(LANDING_REQUIRED)

# Natural keys: a corrected re-delivery replaces rows with the same key.
NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "patients": ("patient_key",),
    "treatments": ("treatment_id",),
    "pain_assessments": ("assessment_id",),
    "adverse_events": ("treatment_id", "event", "recorded_at"),
}

# Lineage columns added by ingest to every staging row.
DELIVERY_ID = "delivery_id"
SOURCE_ROW = "source_row"  # 1-based data row number in the file (the header is not counted)

# The raw patient identifier never leaves ingest; this keyed hash replaces it.
PATIENT_KEY = "patient_key"

ROUTES: tuple[str, ...] = ("IV", "IM", "IN", "SC", "PO")
SEXES: tuple[str, ...] = ("F", "M", "X")

# --- typed core columns (after validation) -----------------------------------------
CORE_COLUMNS: dict[str, tuple[str, ...]] = {
    "patients": (
        PATIENT_KEY,
        "sex",
        "birth_year",
        "primary_condition",
        "comorbidities",
        "site_id",
    ),
    "treatments": (
        "treatment_id",
        PATIENT_KEY,
        "administered_at",
        "duration_min",
        "route",
        "dose_mg",
        "weight_kg",
    ),
    "pain_assessments": ("assessment_id", PATIENT_KEY, "assessed_at", "pain_score"),
    "adverse_events": ("treatment_id", PATIENT_KEY, "recorded_at", "event", "severity"),
}

# --- analysis.episodes --------------------------------------------------------------
EPISODE_COLUMNS: tuple[str, ...] = (
    PATIENT_KEY,
    "series_no",  # 1, 2, ... per patient in time order
    "site_id",
    "route",  # route of the series; "mixed" when administrations differ
    "n_administrations",
    "is_series",  # more than one administration
    "dose_mg_per_kg",  # mean dose per administration
    "infusion_min",  # mean infusion length per administration
    "series_start",
    "origin",  # end of the last administration: time zero
    "baseline_score",
    "responded",
    "response_at",
    "event",  # 1 = pain returned, 0 = censored
    "time_days",  # visit at which return was observed, or censoring visit
    "time_lower_days",  # last relieved visit (interval censoring lower bound)
    "time_upper_days",  # first visit with pain back; NaN when right-censored
    "time_mid_days",  # midpoint sensitivity analysis
    "censor_reason",  # returned | retreated | end_of_data
    "sex",
    "age",
    "primary_condition",
    "n_comorbidities",
    "exclusion",  # why not in the duration analysis (no_baseline, no_follow_up, non_responder)
)

# The analyses the model stage can publish and the results tables each one writes.
# Descriptive tables (response rates, attrition, adverse events) are always written.
ANALYSIS_TABLES: dict[str, tuple[str, ...]] = {
    "km": ("km_curves", "survival_summary", "landmarks", "logrank"),
    "rmst": ("rmst", "rmst_difference"),
    "cox": ("cox", "cox_baseline", "cox_means"),
    "ph_test": ("ph_test",),
    "dose_response": ("dose_response",),
    "competing_risks": ("competing_risks",),
    "interval_censored": ("turnbull", "interval_weibull", "interval_cox"),
}
ANALYSES: tuple[str, ...] = tuple(ANALYSIS_TABLES)
