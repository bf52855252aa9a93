"""The frame a GX suite validates: a staging frame's raw text plus typed shadow columns.

The suites (``expectations/build_suites.py``) check the raw staging strings with their
format, set, null and uniqueness rules, and the typed shadows with their range and
compound-key rules: ``<column>__typed`` (numbers as float, timestamps as UTC instants)
and, for timestamps, ``<column>__unparsed`` (the raw value where it is not empty and did
not parse, so "is a real date/time" needs no GX row condition). The column names and
suffixes here are the suites' contract.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.schema import LANDING_REQUIRED, SOURCE_ROW
from pipeline.typing_rules import parse_instants

TYPED_SUFFIX = "__typed"
UNPARSED_SUFFIX = "__unparsed"  # timestamps only: the raw value that did not parse

# Which landing columns get a typed shadow, and how it is parsed. The suites' range rules
# name these shadow columns; keep in step with TYPED in expectations/build_suites.py.
NUMERIC_COLUMNS = frozenset({"birth_year", "pain_score", "duration_min", "dose_mg", "weight_kg"})
TIMESTAMP_COLUMNS = frozenset({"administered_at", "assessed_at", "recorded_at"})
# Every value the suites' integer and decimal patterns accept (their union).
NUMBER_RE = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$"


def prepare(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Raw landing columns as Arrow strings (blank -> missing) + source_row + typed shadows.

    Arrow-backed columns keep GX's null, set and uniqueness checks vectorised and let the
    regex rules (``pipeline.gx_expectations``) run in RE2 without a copy. The typed
    shadows stay numpy (float64, datetime64[ns, UTC]): GX's range rule is vectorised only
    for those dtypes and calls Python per value for Arrow-backed ones (15× slower). A typed shadow
    only matters where its column passed the format rule (every other failure depends on
    that rule), so numbers are parsed from the values that look like numbers only.
    """
    if SOURCE_ROW not in frame.columns:
        raise ValueError(f"{table}: staging frame has no {SOURCE_ROW} column")
    present = [c for c in LANDING_REQUIRED[table] if c in frame.columns]
    out: dict[str, pd.Series] = {SOURCE_ROW: frame[SOURCE_ROW].astype("int64")}
    for column in present:
        text = arrow_text(frame[column])
        out[column] = pd.Series(pd.arrays.ArrowExtensionArray(text), index=frame.index)
        if column in NUMERIC_COLUMNS:
            number = pc.if_else(pc.match_substring_regex(text, NUMBER_RE), text, None)
            out[column + TYPED_SUFFIX] = pd.Series(
                pc.cast(number, pa.float64()).to_numpy(zero_copy_only=False), index=frame.index
            )
        elif column in TIMESTAMP_COLUMNS:
            typed = parse_instants(out[column])
            out[column + TYPED_SUFFIX] = typed
            unparsed = pc.if_else(pa.array(typed.isna().to_numpy()), text, None)
            out[column + UNPARSED_SUFFIX] = pd.Series(
                pd.arrays.ArrowExtensionArray(unparsed), index=frame.index
            )
    prepared = pd.DataFrame(out)
    prepared.index = pd.RangeIndex(len(prepared))
    if not _strictly_increasing(prepared[SOURCE_ROW]) and not prepared[SOURCE_ROW].is_unique:
        raise ValueError(f"{table}: {SOURCE_ROW} must be unique within one staging frame")
    return prepared


def arrow_text(series: pd.Series) -> pa.ChunkedArray:
    """A text column as one Arrow string array, "" and None both missing.

    A dictionary of strings (ingest's pseudonyms, ``pipeline.row_checks``) stays one: a
    blank can only be one of its distinct values.
    """
    dtype = series.dtype
    arrow = series.array._pa_array if isinstance(dtype, pd.ArrowDtype) else None  # noqa: SLF001
    if arrow is not None and pa.types.is_dictionary(arrow.type):
        if not any(pc.any(pc.equal(c.dictionary, "")).as_py() for c in arrow.chunks):
            return arrow
        arrow = pc.cast(arrow, pa.string())
    if arrow is not None and pa.types.is_string(arrow.type):
        text = arrow  # zero-copy; the public route copies
    else:
        values = series.to_numpy(dtype=object)
        text = pa.chunked_array([pa.array(values, type=pa.string(), from_pandas=True)])
    if not pc.any(pc.equal(text, "")).as_py():  # staging stores blanks as NULL: no copy
        return text
    return pc.if_else(pc.equal(text, ""), None, text)


def _strictly_increasing(rows: pd.Series) -> bool:
    """True for staging's usual order (so unique without hashing 10 M row numbers)."""
    values = rows.to_numpy()
    return bool((values[1:] > values[:-1]).all())


def value_lookup(prepared: pd.DataFrame) -> Callable[[str, list[int]], Any]:
    """``lookup(column, source_rows)`` -> that column's values on those rows.

    The row order is checked once per frame, not once per failing rule: sorted frames
    (staging's usual order) are searched by bisection, others through an index.
    """
    source_rows = prepared[SOURCE_ROW]
    if _strictly_increasing(source_rows):
        positions = source_rows.to_numpy()
        return lambda column, rows: prepared[column].take(positions.searchsorted(rows)).to_numpy()
    by_row = prepared.set_index(SOURCE_ROW)
    return lambda column, rows: by_row[column].reindex(rows).to_numpy()
