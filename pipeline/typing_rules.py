"""Turn staging text into core types: in pandas for frames, in SQL for promotion.

Values that do not parse become missing here; the GX suite has already quarantined
those rows with the precise rule, so coercion never hides a bad value.

Promotion to core runs as one ``INSERT INTO core ... SELECT`` per table
(``pipeline.validate``), so the same typing is also written as SQL expressions over
a staging table, per dialect (``core_columns``). Both forms give the same core rows;
``tests/warehouse/test_promotion_sql.py`` reads them back and compares. On SQLite a
timestamp is stored in SQLAlchemy's own DateTime text form (``YYYY-MM-DD
HH:MM:SS.ffffff``), with SQLite's millisecond precision.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import DateTime, Float, Integer, Table, Text, case, cast, func, literal
from sqlalchemy.sql.elements import ColumnElement

from pipeline.schema import CORE_COLUMNS, NATURAL_KEYS, PATIENT_KEY, SOURCE_ROW

NUMERIC = ("birth_year", "pain_score", "duration_min", "dose_mg", "weight_kg")
INTEGER = ("birth_year", "pain_score")
# What Python's str.strip() removes in practice: space, tab, newlines, VT, FF.
WHITESPACE = " \t\n\r\x0b\x0c"


# A UTC offset at the end of an ISO-8601 value ("Z", "+02:00", "-0130").
OFFSET_RE = r"(?:Z|[+-]\d{2}:?\d{2})$"


def parse_instants(values: pd.Series) -> pd.Series:
    """ISO-8601 text -> UTC instants (``datetime64[ns, UTC]``); no offset means UTC,
    text that is no instant becomes NaT.

    Values with and without an offset are parsed apart: pandas 2.3's ISO-8601 parser
    carries the offset of one value over to offset-less values after it in the same
    call (``"...T10:00:00+02:00"`` then ``"2024-02-01T09:00:00"`` gave 07:00 UTC for the
    second), so a delivery that mixes the two forms got shifted instants
    (``tests/unit/test_parse_instants.py``).
    """
    text = values.astype(pd.ArrowDtype(pa.string()))
    fast = _arrow_instants(text.array._pa_array)  # noqa: SLF001 - zero-copy
    if fast is not None:
        return pd.Series(fast.to_pandas(), index=values.index, dtype="datetime64[ns, UTC]")
    has_offset = text.str.contains(OFFSET_RE, regex=True).fillna(False).to_numpy(dtype=bool)
    if has_offset.all() or not has_offset.any():
        return pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    for part in (has_offset, ~has_offset):
        parsed[part] = pd.to_datetime(text[part], errors="coerce", utc=True, format="ISO8601")
    return parsed


def _arrow_instants(text: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """``parse_instants`` in Arrow's C++ ISO-8601 parser, or None when a value fails it.

    Arrow's cast is strict (no 2024-02-30, no 24:00:00) and where it parses a value it
    gives pandas' instant; it rejects some forms pandas accepts (``20240101``,
    ``+2``) and never returns a partial result, so one value it cannot parse sends the
    whole column to pandas. At 10 M rows: 0.3 s against pandas' 2.5 s.
    """
    utc, naive = pa.timestamp("ns", "UTC"), pa.timestamp("ns")
    for target in (naive, utc):  # every value without an offset, or every value with one
        try:
            return pc.cast(pc.cast(text, target), utc)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    has_offset = pc.match_substring_regex(text, OFFSET_RE)
    try:
        offset_less = pc.cast(pc.cast(pc.if_else(has_offset, None, text), naive), utc)
        return pc.if_else(has_offset, pc.cast(pc.if_else(has_offset, text, None), utc), offset_less)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def parse_timestamps(values: pd.Series) -> pd.Series:
    """ISO-8601 text -> naive UTC timestamps (offsets are converted, not dropped)."""
    return parse_instants(values).dt.tz_localize(None)


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


def natural_key(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    """One text key per row (values joined by "|", timestamps in ISO form)."""
    parts = [
        frame[k].dt.strftime("%Y-%m-%dT%H:%M:%S")
        if pd.api.types.is_datetime64_any_dtype(frame[k])
        else frame[k].astype(str)
        for k in keys
    ]
    key = parts[0]
    for part in parts[1:]:
        key = key + "|" + part
    return key


# --- the same typing as SQL, for INSERT INTO core ... SELECT FROM staging -----------------


def _lit(value: str) -> ColumnElement:
    return cast(literal(value, Text), Text)


def _trim(value: ColumnElement, dialect: str) -> ColumnElement:
    trim = func.btrim if dialect == "postgresql" else func.trim
    return trim(value, _lit(WHITESPACE))


def sql_timestamp(value: ColumnElement, dialect: str) -> ColumnElement:
    """ISO-8601 text -> naive UTC instant, as ``parse_timestamps`` does.

    PostgreSQL: through ``timestamptz`` (the caller pins the session time zone to UTC,
    so a value without offset is UTC) and back to ``timestamp`` at UTC. SQLite: its date
    functions convert ``Z``/``±HH:MM`` offsets to UTC; ``±HHMM`` gets its colon first.
    """
    text = _trim(value, dialect)
    if dialect == "postgresql":
        return cast(func.timezone(_lit("UTC"), cast(text, DateTime(timezone=True))), DateTime)
    sign = func.substr(text, -5, 1)
    compact = (
        (func.length(text) > 16)
        & sign.in_([_lit("+"), _lit("-")])
        & func.substr(text, -4).op("GLOB")(_lit("[0-9][0-9][0-9][0-9]"))
    )
    text = case(
        (
            compact,
            func.substr(text, 1, func.length(text) - 2)
            .op("||")(_lit(":"))
            .op("||")(func.substr(text, -2)),
        ),
        else_=text,
    )
    seconds = func.strftime(_lit("%Y-%m-%d %H:%M:%S"), text)
    micros = cast(
        func.round((func.strftime(_lit("%f"), text) - func.strftime(_lit("%S"), text)) * 1e6),
        Integer,
    )
    return seconds.op("||")(func.printf(_lit(".%06d"), micros))


def sql_core_value(column: str, staged: ColumnElement, dialect: str) -> ColumnElement:
    """One core column from its staging text, typed like ``to_core_types``."""
    if column.endswith("_at"):
        return sql_timestamp(staged, dialect)
    if column in NUMERIC:
        number = cast(func.nullif(_trim(staged, dialect), _lit("")), Float)
        return cast(func.round(number), Integer) if column in INTEGER else number
    if column == PATIENT_KEY:
        return staged
    return _trim(staged, dialect)


def sql_natural_key(table: str, typed: dict[str, ColumnElement], dialect: str) -> ColumnElement:
    """``natural_key`` in SQL: values joined by "|", instants as ISO seconds."""
    parts: list[ColumnElement] = []
    for key in NATURAL_KEYS[table]:
        if key.endswith("_at"):
            if dialect == "postgresql":
                parts.append(func.to_char(typed[key], _lit('YYYY-MM-DD"T"HH24:MI:SS')))
            else:
                parts.append(func.strftime(_lit("%Y-%m-%dT%H:%M:%S"), typed[key]))
        else:  # pandas' astype(str) writes a missing value as "None"
            parts.append(func.coalesce(cast(typed[key], Text), _lit("None")))
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.op("||")(_lit("|")).op("||")(part)
    return joined


def core_columns(table: str, staging: Table, dialect: str) -> dict[str, ColumnElement]:
    """Core column name -> SQL expression over ``staging``, natural_key and lineage included."""
    typed = {c: sql_core_value(c, staging.c[c], dialect) for c in CORE_COLUMNS[table]}
    return {
        **typed,
        "natural_key": sql_natural_key(table, typed, dialect),
        "delivery_id": staging.c.delivery_id,
        SOURCE_ROW: staging.c[SOURCE_ROW],
    }
