"""Turn staging text into core types.

Values that do not parse become missing here; the GX suite has already quarantined
those rows with the precise rule, so coercion never hides a bad value.
"""

from __future__ import annotations

import pandas as pd

from pipeline.schema import CORE_COLUMNS, PATIENT_KEY, SOURCE_ROW

NUMERIC = ("birth_year", "pain_score", "duration_min", "dose_mg", "weight_kg")


def parse_timestamps(values: pd.Series) -> pd.Series:
    """ISO-8601 text -> naive UTC timestamps (offsets are converted, not dropped)."""
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
    return parsed.dt.tz_localize(None)


def to_core_types(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The staging frame with its core columns typed, keeping lineage columns."""
    out = frame.copy()
    for column in CORE_COLUMNS[table]:
        if column not in out.columns:
            out[column] = None
        elif column.endswith("_at"):
            out[column] = parse_timestamps(out[column])
        elif column in NUMERIC:
            out[column] = pd.to_numeric(out[column], errors="coerce")
        elif column not in (PATIENT_KEY, SOURCE_ROW):
            out[column] = out[column].astype("string").str.strip().astype(object)
    return out
