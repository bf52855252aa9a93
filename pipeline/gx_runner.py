"""Run the Great Expectations suite of one landing table over a staging frame.

The suites, the GX context and the per-thread copies of both are
``pipeline.gx_context``'s.

A suite has two parts, each run as a GX validation of its own (``check``): the *row*
rules, which a row passes or fails on its own values, and the *table-wide* rules
(uniqueness), which compare rows with each other. Ingest runs the row rules on each
batch of rows as it streams them into staging and the table-wide rules once on the key
columns of the whole table (``pipeline.row_checks``); ``combine`` turns the parts into
the table's verdict, and ``validate`` does all of it on one frame. Each run uses
``result_format`` COMPLETE and ``unexpected_index_column_names=["source_row"]`` so GX
itself names the failing rows.
The frame GX sees (``pipeline.gx_frame``) holds the raw staging strings (regex, set,
null and uniqueness rules look at those) plus typed shadow columns ``<column>__typed``
(range rules and the timestamp part of compound keys look at those), and for each
timestamp the raw value that did not parse, ``<column>__unparsed``. A failure whose rule
lists another rule in ``meta.depends_on`` is dropped when that rule failed on the same
row, so a score of ``"abc"`` is reported as not a number and not again as out of range.

Everything here is pandas + GX; ``pipeline`` never imports Airflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipeline.gx_context import Rules, batch_definition, load_suite, root_of, suite_part
from pipeline.gx_frame import prepare, value_lookup
from pipeline.schema import LANDING_REQUIRED, SOURCE_ROW

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite

FAILURE_COLUMNS = ("source_row", "rule_id", "column", "value", "message")
SUMMARY_COLUMNS = (
    "rule_id",
    "expectation_type",
    "column",
    "evaluated",
    "unexpected",
    "reported",
    "success",
)

_PART_SUMMARY = ("rule_id", "expectation_type", "column", "evaluated", "unexpected", "success")

RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": [SOURCE_ROW],
    # The pandas "query" GX would build lists every failing index: costly, never used.
    "return_unexpected_index_query": False,
    "partial_unexpected_count": 0,
}


class SchemaError(Exception):
    """A staging frame lacks columns its landing contract requires: the table is blocked.

    ``table`` and ``missing`` say what is wrong; ``str(exc)`` says what to do about it.
    """

    def __init__(self, table: str, missing: list[str] | tuple[str, ...], message: str = ""):
        self.table = table
        self.missing = tuple(missing)
        self.message = message or (
            f"{table}: required column(s) missing: {', '.join(self.missing)}. "
            f"The landing contract needs {', '.join(LANDING_REQUIRED.get(table, ()))}; "
            "no row of this table was validated. Check the header line of the delivered "
            f"{table} file (spelling, separator, encoding) and re-deliver it."
        )
        super().__init__(self.message)


@dataclass(frozen=True)
class RuleResults:
    """What one GX run found for part of a suite on part of a table (``check``); the
    table's verdict is ``combine`` of all its parts."""

    found: list[pd.DataFrame]  # source_row, rule_id, column, value, _template (message)
    summary: pd.DataFrame  # _PART_SUMMARY, one row per expectation run


@dataclass(frozen=True)
class TableValidation:
    """What one GX run over one table found."""

    table: str
    failures: pd.DataFrame  # FAILURE_COLUMNS, one row per (failing row, failed rule)
    summary: pd.DataFrame  # SUMMARY_COLUMNS, one row per expectation
    success: bool  # GX's verdict on the suite (before depends_on de-duplication)


def suite_rules(table: str, *, context_root: Path | None = None) -> pd.DataFrame:
    """The rules of a table's suite: rule_id, expectation_type, column, message template."""
    suite = load_suite(root_of(context_root), table)
    metas = [(e, e.meta or {}) for e in suite.expectations]
    return pd.DataFrame(
        [
            {
                "rule_id": meta["rule_id"],
                "expectation_type": e.expectation_type,
                "column": meta.get("column"),
                "message": meta.get("message"),
                "blocking": bool(meta.get("blocking", False)),
            }
            for e, meta in metas
        ]
    )


# --- GX parameters -----------------------------------------------------------------------


def _now(now: datetime | None) -> pd.Timestamp:
    stamp = pd.Timestamp(now if now is not None else datetime.now(UTC))
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


# --- running and reading GX's results ------------------------------------------------------


def validate(
    table: str,
    frame: pd.DataFrame,
    *,
    now: datetime | None = None,
    context_root: Path | None = None,
) -> TableValidation:
    """Run ``table``'s whole suite over one staging frame; failures and per-rule summary.

    The one-shot form of what ingest does batch by batch (``pipeline.row_checks``): the
    row rules and the table-wide rules on the same frame, combined. Raises SchemaError
    when required columns are missing (extra columns are fine) and ValueError for a frame
    without unique ``source_row``.
    """
    prepared = prepare(_known(table), frame)
    parts = [
        check(table, prepared, rules, now=now, context_root=context_root)
        for rules in ("rows", "table")
    ]
    return combine(table, parts, context_root=context_root)


def check(
    table: str,
    prepared: pd.DataFrame,
    rules: Rules,
    *,
    only: str | None = None,
    values: pd.DataFrame | None = None,
    now: datetime | None = None,
    context_root: Path | None = None,
) -> RuleResults:
    """One GX validation of part of ``table``'s suite over a prepared frame (``gx_frame``).

    ``rules="rows"``: every rule a row passes or fails on its own values, so any slice of
    the table may be checked alone; ``rules="table"``: the rules that compare rows with
    each other (uniqueness), which need every row of the table at once, though only the
    columns ``table_wide_columns`` names. ``only`` narrows the part to one rule id (each
    table-wide rule can then run in its own thread, on its own columns), and ``values``
    is where the failing rows' values are looked up (default: ``prepared``). Raises
    SchemaError when a blocking (schema) rule fails.
    """
    root = root_of(context_root)
    stamp = _now(now)
    results = _run_suite(
        root, table, suite_part(root, _known(table), rules, only), prepared,
        {"now": stamp, "current_year": stamp.year},
    )  # fmt: skip
    # Table-level ("blocking") rules first: a broken schema makes row results meaningless.
    for res in results:
        meta = res.expectation_config.meta or {}
        if meta.get("blocking") and not res.success:
            missing = sorted(res.result.get("details", {}).get("mismatched", {}).get("missing", []))
            raise SchemaError(table, missing or list(LANDING_REQUIRED[table]))

    values_at = value_lookup(prepared if values is None else values)
    found: list[pd.DataFrame] = []
    summary_rows: list[dict[str, Any]] = []
    for res in results:
        config = res.expectation_config
        meta = config.meta or {}
        rule_id = meta["rule_id"]
        crash = _crash(res)
        if crash is not None:
            raise RuntimeError(f"GX rule {rule_id} crashed: {crash}")
        r = res.result or {}
        rows = [int(item[SOURCE_ROW]) for item in r.get("unexpected_index_list") or []]
        column = meta.get("column")
        if rows:
            found.append(
                pd.DataFrame(
                    {
                        "source_row": pd.Series(rows, dtype="int64"),
                        "rule_id": rule_id,
                        "column": column,
                        "value": values_at(column, rows) if column else None,
                    }
                ).assign(_template=meta.get("message", rule_id))
            )
        element_count = r.get("element_count")
        summary_rows.append(
            {
                "rule_id": rule_id,
                "expectation_type": config.type,
                "column": column,
                # A table-level rule (the schema) checks the table once, not each row.
                "evaluated": (
                    int(element_count - (r.get("missing_count") or 0))
                    if element_count is not None
                    else None
                ),
                "unexpected": int(r.get("unexpected_count") or 0),
                "success": bool(res.success),
            }
        )
    return RuleResults(found=found, summary=pd.DataFrame(summary_rows, columns=_PART_SUMMARY))


def combine(
    table: str, parts: list[RuleResults], *, context_root: Path | None = None
) -> TableValidation:
    """The table's verdict from the results of its parts (batches, and the table-wide rules).

    Counts add up over the parts; a failure whose rule lists another rule in
    ``meta.depends_on`` is dropped when that rule failed on the same row (the two may
    come from different parts), and messages are filled in last.
    """
    suite = load_suite(root_of(context_root), _known(table))
    order = _rule_order(suite)
    depends = {
        (e.meta or {})["rule_id"]: list((e.meta or {}).get("depends_on") or [])
        for e in suite.expectations
    }
    failures = _finish_failures([f for p in parts for f in p.found], depends, order)
    summaries = [p.summary for p in parts if len(p.summary)]
    if not summaries:
        summary = pd.DataFrame(columns=list(SUMMARY_COLUMNS))
        return TableValidation(table=table, failures=failures, summary=summary, success=True)
    each = pd.concat(summaries, ignore_index=True)
    summary = each.groupby("rule_id", sort=False).agg(
        expectation_type=("expectation_type", "first"),
        column=("column", "first"),
        evaluated=("evaluated", lambda v: int(v.sum()) if v.notna().all() else 1),
        unexpected=("unexpected", "sum"),
        success=("success", "all"),
    )
    summary = summary.reset_index().sort_values(
        "rule_id", key=lambda r: r.map(order), kind="stable"
    )
    reported = failures.groupby("rule_id").size() if len(failures) else pd.Series(dtype="int64")
    summary["reported"] = summary["rule_id"].map(reported).fillna(0).astype("int64")
    summary["unexpected"] = summary["unexpected"].astype("int64")
    return TableValidation(
        table=table,
        failures=failures,
        summary=summary.loc[:, list(SUMMARY_COLUMNS)].reset_index(drop=True),
        success=bool(summary["success"].all()),
    )


def table_wide_columns(table: str, *, context_root: Path | None = None) -> dict[str, bool]:
    """The prepared columns the table-wide rules read (their keys and reported columns),
    each with whether it is only ever part of a compound key (so only its equality with
    other rows' values matters, never the value itself)."""
    suite = suite_part(root_of(context_root), _known(table), "table", None)
    columns: dict[str, bool] = {SOURCE_ROW: False}
    for e in suite.expectations:
        kwargs = e.configuration.kwargs
        for name in kwargs.get("column_list") or []:
            columns.setdefault(name, True)
        for name in (kwargs.get("column"), (e.meta or {}).get("column")):
            if name:
                columns[name] = False
    return columns


def _crash(result: Any) -> str | None:
    """The error of an expectation GX could not evaluate, else None.

    GX reports an expectation's own exception as one ``exception_info`` dict, but a
    metric that raised as ``{metric id: ExceptionInfo}``, with the expectation marked
    failed and no rows: read as a verdict, a crashing rule would pass every row.
    """
    info = result.exception_info or {}
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for item in info.values():
        if getattr(item, "raised_exception", False):
            return str(item.exception_message)
        if isinstance(item, dict) and item.get("raised_exception"):
            return str(item.get("exception_message"))
    return None


def _known(table: str) -> str:
    if table not in LANDING_REQUIRED:
        raise ValueError(
            f"unknown landing table {table!r}; expected one of {list(LANDING_REQUIRED)}"
        )
    return table


def table_wide_rules(table: str, *, context_root: Path | None = None) -> dict[str, list[str]]:
    """The table's table-wide (uniqueness) rules in suite order: rule id -> the columns
    GX reads for it (``source_row`` first; the reported column may be another one)."""
    suite = suite_part(root_of(context_root), _known(table), "table", None)
    out = {}
    for e in suite.expectations:
        kwargs = e.configuration.kwargs
        keys = [kwargs["column"]] if kwargs.get("column") else list(kwargs["column_list"])
        out[(e.meta or {})["rule_id"]] = [SOURCE_ROW, *keys]
    return out


def _run_suite(
    root: str,
    table: str,
    suite: ExpectationSuite,
    prepared: pd.DataFrame,
    parameters: dict[str, Any],
) -> list[Any]:
    """GX's results for every expectation of ``suite`` on ``prepared``, in suite order
    (GX itself returns them in the order its metric graph resolved them).

    GX's own validator for a batch definition (what ValidationDefinition.run uses, minus
    storing the result; ``Batch.validate`` would load, and fingerprint, the frame twice).
    """
    from great_expectations.validator.v1_validator import Validator

    validator = Validator(
        batch_definition=batch_definition(root, table),
        batch_parameters={"dataframe": prepared},
        result_format=RESULT_FORMAT,
    )
    results = validator.validate_expectation_suite(suite, expectation_parameters=parameters).results
    order = _rule_order(suite)
    return sorted(results, key=lambda res: order[res.expectation_config.meta["rule_id"]])


def _rule_order(suite: ExpectationSuite) -> dict[str, int]:
    """Rule id -> position in the suite (the order failures and results are reported in)."""
    return {(e.meta or {})["rule_id"]: i for i, e in enumerate(suite.expectations)}


def _finish_failures(
    found: list[pd.DataFrame], depends: dict[str, list[str]], order: dict[str, int]
) -> pd.DataFrame:
    if not found:
        return pd.DataFrame(
            {
                "source_row": pd.Series(dtype="int64"),
                **{c: pd.Series(dtype=object) for c in FAILURE_COLUMNS[1:]},
            }
        )
    failures = pd.concat(found, ignore_index=True)
    # Drop a failure when a rule it depends on failed on the same row.
    failed = set(zip(failures["source_row"], failures["rule_id"], strict=True))
    redundant = [
        any((row, dep) in failed for dep in depends.get(rule, ()))
        for row, rule in zip(failures["source_row"], failures["rule_id"], strict=True)
    ]
    failures = failures.loc[~pd.Series(redundant, index=failures.index, dtype=bool)]
    values = failures["value"].astype(object)
    values = [None if pd.isna(v) else str(v) for v in values]
    failures = failures.assign(value=pd.Series(values, index=failures.index, dtype=object))
    failures["message"] = [
        template.format(value=value if value is not None else "")
        for template, value in zip(failures["_template"], failures["value"], strict=True)
    ]
    failures = failures.assign(_order=failures["rule_id"].map(order))
    failures = failures.sort_values(["source_row", "_order"], kind="stable")
    return failures.loc[:, list(FAILURE_COLUMNS)].reset_index(drop=True)


def run_suite(
    table: str,
    frame: pd.DataFrame,
    *,
    now: datetime | None = None,
    context_root: Path | None = None,
) -> pd.DataFrame:
    """One row per (failing row, failed rule): source_row, rule_id, column, value, message.

    ``frame`` is a staging frame: landing columns as strings (None when empty) plus
    ``source_row`` and other lineage columns. ``now`` (default: the current UTC time)
    bounds "not in the future" and the current year; naive values are taken as UTC.
    Raises SchemaError when required columns are missing.
    """
    return validate(table, frame, now=now, context_root=context_root).failures


def suite_summary(
    table: str,
    frame: pd.DataFrame,
    *,
    now: datetime | None = None,
    context_root: Path | None = None,
) -> pd.DataFrame:
    """Per-expectation counts for ``dq``: rule_id, expectation_type, column, evaluated,
    unexpected (GX's count), reported (rows left after depends_on), success.

    Runs the suite; a stage that needs failures too should call ``validate`` once.
    """
    return validate(table, frame, now=now, context_root=context_root).summary
