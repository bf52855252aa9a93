"""relief's one custom Great Expectations expectation: a regex check that runs in Arrow.

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

Importing this module registers both classes with GX; ``pipeline.gx_runner`` and
``expectations/build_suites.py`` import it before a suite is loaded or written.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from great_expectations.execution_engine import PandasExecutionEngine, SqlAlchemyExecutionEngine
from great_expectations.expectations.core.expect_column_values_to_match_regex import (
    ExpectColumnValuesToMatchRegex,
)
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    column_condition_partial,
)
from great_expectations.expectations.metrics.util import get_dialect_regex_expression

METRIC = "column_values.match_regex_vectorised"


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
