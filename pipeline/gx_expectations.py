"""relief's custom Great Expectations expectations: GX's own checks, evaluated in Arrow.

Three of GX's stock expectations spend most of a 10 M-row validation in per-value
Python or in pandas' object-array hashing; each is subclassed here with the same
kwargs, renderers and result format and a different pandas metric.

**Regex.**
GX's own ``expect_column_values_to_match_regex`` evaluates pandas columns with
``column.astype(str).str.contains(regex)``: a Python ``re`` search per row, about
1 µs each, so the format rules alone took ~20 s of a 10 M-row validation.
``ExpectColumnValuesToMatchRegexVectorised`` is the same expectation (same kwargs,
renderers and result format, subclassed from GX's) with a different metric: on pandas
it runs ``pyarrow.compute.match_substring_regex`` (RE2, vectorised) over the column's
Arrow buffer; on SQL engines it is GX's own regex expression. Both are a *search*,
like GX's; relief's patterns are anchored with ``^...$``. One difference from Python's
``re``: RE2's ``$`` does not match before a final newline, so ``"5\\n"`` is not an
integer here (stricter, never looser).

**Uniqueness** (``expect_column_values_to_be_unique_vectorised``,
``expect_compound_columns_to_be_unique_vectorised``). GX's pandas metric is
``~column.duplicated(keep=False)``, which for Arrow strings first builds a Python object
per value (10 M assessment ids: 2.7-4.3 s). Here a column whose values arrive in
ascending order (registry exports usually number their rows so) is checked by comparing
neighbours (0.2 s); any other column falls back to GX's own pandas check. Several
columns are sorted together by Arrow (categoricals by their codes, instants as
integers) and compared with their neighbours: 0.6 s for 10 M (patient, instant) pairs
against 1.6-2.4 s. Both return exactly the rows GX's metric returns
(``tests/unit/test_gx_expectations.py``). These two have no SQL implementation: relief
runs its suites on pandas frames only.

Importing this module registers the classes with GX; ``pipeline.gx_runner`` and
``expectations/build_suites.py`` import it before a suite is loaded or written.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from great_expectations.execution_engine import PandasExecutionEngine, SqlAlchemyExecutionEngine
from great_expectations.expectations.core.expect_column_values_to_be_unique import (
    ExpectColumnValuesToBeUnique,
)
from great_expectations.expectations.core.expect_column_values_to_match_regex import (
    ExpectColumnValuesToMatchRegex,
)
from great_expectations.expectations.core.expect_compound_columns_to_be_unique import (
    ExpectCompoundColumnsToBeUnique,
)
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    MulticolumnMapMetricProvider,
    column_condition_partial,
)
from great_expectations.expectations.metrics.map_metric_provider.multicolumn_condition_partial import (
    multicolumn_condition_partial,
)
from great_expectations.expectations.metrics.util import get_dialect_regex_expression

METRIC = "column_values.match_regex_vectorised"
UNIQUE_METRIC = "column_values.unique_vectorised"
COMPOUND_UNIQUE_METRIC = "compound_columns.unique_vectorised"


def arrow_strings(column: pd.Series) -> pa.ChunkedArray | pa.Array:
    """The column as Arrow strings, without a copy when it is Arrow-backed already."""
    arrow_backed = (
        isinstance(column.dtype, pd.ArrowDtype) and pa.types.is_string(column.dtype.pyarrow_dtype)
    ) or (isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow")
    if arrow_backed:
        return column.array._pa_array  # noqa: SLF001 - pandas' public accessor copies
    # GX hands the metric non-null values only; str() them as GX's own regex check does.
    return pa.array(column.astype(str).to_numpy(dtype=object), type=pa.string())


class ColumnValuesMatchRegexVectorised(ColumnMapMetricProvider):
    condition_metric_name = METRIC
    condition_value_keys = ("regex",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, regex: str, **kwargs: Any) -> pd.Series:
        matched = pc.match_substring_regex(arrow_strings(column), regex)
        return pd.Series(matched.to_numpy(zero_copy_only=False), index=column.index, dtype=bool)

    @column_condition_partial(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(cls, column: Any, regex: str, _dialect: Any, **kwargs: Any) -> Any:
        expression = get_dialect_regex_expression(column, regex, _dialect)
        if expression is None:
            raise NotImplementedError(f"regex is not supported for dialect {_dialect}")
        return expression


class ExpectColumnValuesToMatchRegexVectorised(ExpectColumnValuesToMatchRegex):
    """Expect column values to match a regex: GX's expectation, evaluated in Arrow."""

    map_metric = METRIC

    class Config:
        title = "Expect column values to match regex (vectorised)"


# --- uniqueness ------------------------------------------------------------------------


def _sortable(column: pd.Series) -> pa.Array | pa.ChunkedArray:
    """A column as an Arrow array whose order and equality are the values' own.

    Categoricals become their codes and instants their integer nanoseconds: equal codes
    mean equal values, and these sort without comparing strings.
    """
    if isinstance(column.dtype, pd.ArrowDtype):
        return column.array._pa_array.combine_chunks()  # noqa: SLF001 - the public route copies more
    if isinstance(column.dtype, pd.CategoricalDtype):
        return pa.array(column.cat.codes.to_numpy())
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return pa.array(np.asarray(column.array.asi8))
    return pa.array(column.to_numpy(), from_pandas=True)


def _flag_runs(equal_to_next: np.ndarray) -> np.ndarray:
    """Positions in a sorted run of equal values: each row equal to its neighbour."""
    flagged = np.zeros(len(equal_to_next) + 1, dtype=bool)
    flagged[:-1] |= equal_to_next
    flagged[1:] |= equal_to_next
    return flagged


def _neighbours_equal(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """values[i] == values[i + 1], as numpy booleans (no nulls: GX drops them first)."""
    n = len(values)
    same = pc.equal(values.slice(1, n - 1), values.slice(0, n - 1))
    return same.to_numpy(zero_copy_only=False).astype(bool)


def duplicated(column: pd.Series) -> np.ndarray:
    """Which values occur more than once (every occurrence), as GX's ``duplicated(keep=False)``."""
    if len(column) < 2:
        return np.zeros(len(column), dtype=bool)
    values = _sortable(column)
    n = len(values)
    descending = pc.any(pc.less(values.slice(1, n - 1), values.slice(0, n - 1))).as_py()
    if descending:  # not in ascending order: GX's own check
        return column.duplicated(keep=False).to_numpy()
    return _flag_runs(_neighbours_equal(values))


def duplicated_rows(frame: pd.DataFrame) -> np.ndarray:
    """Which rows repeat another row on every column (every occurrence)."""
    if len(frame) < 2:
        return np.zeros(len(frame), dtype=bool)
    names = [f"c{i}" for i in range(frame.shape[1])]
    keys = pa.table(
        {name: _sortable(frame[col]) for name, col in zip(names, frame.columns, strict=True)}
    )
    order = pc.sort_indices(keys, sort_keys=[(name, "ascending") for name in names])
    ordered = keys.take(order)
    same = np.ones(len(frame) - 1, dtype=bool)
    for name in names:
        same &= _neighbours_equal(ordered[name])
    out = np.zeros(len(frame), dtype=bool)
    out[order.to_numpy()[_flag_runs(same)]] = True
    return out


class ColumnValuesUniqueVectorised(ColumnMapMetricProvider):
    condition_metric_name = UNIQUE_METRIC

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return pd.Series(~duplicated(column), index=column.index, dtype=bool)


class CompoundColumnsUniqueVectorised(MulticolumnMapMetricProvider):
    condition_metric_name = COMPOUND_UNIQUE_METRIC
    condition_domain_keys = (
        "batch_id",
        "table",
        "column_list",
        "row_condition",
        "condition_parser",
        "ignore_row_if",
    )

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs: Any) -> pd.Series:
        return pd.Series(~duplicated_rows(column_list), index=column_list.index, dtype=bool)


class ExpectColumnValuesToBeUniqueVectorised(ExpectColumnValuesToBeUnique):
    """Expect each column value to be unique: GX's expectation, evaluated in Arrow."""

    map_metric = UNIQUE_METRIC

    class Config:
        title = "Expect column values to be unique (vectorised)"


class ExpectCompoundColumnsToBeUniqueVectorised(ExpectCompoundColumnsToBeUnique):
    """Expect the columns together to be unique per row: GX's expectation, in Arrow."""

    map_metric = COMPOUND_UNIQUE_METRIC

    class Config:
        title = "Expect compound columns to be unique (vectorised)"
