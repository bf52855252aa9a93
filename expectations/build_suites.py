"""Generate relief's Great Expectations suites for the four landing tables.

Run from the repository root after changing a rule::

    .venv/bin/python expectations/build_suites.py

It opens the file-backed GX context rooted in this folder (``great_expectations.yml``),
writes one suite per landing table to ``suites/<table>.json`` through GX's expectations
store, and registers the pandas data source the runner validates staging frames with
(``fluent_datasources`` in ``great_expectations.yml``; created once, left alone after).
Re-running it with unchanged rules rewrites identical JSON: GX keeps the id of an
expectation that did not change.

Conventions the runner (``pipeline/gx_runner.py``) relies on, all stored in each
expectation's ``meta``:

* ``rule_id`` -- stable, unique id ``<table>.<column>.<rule>`` (or ``<table>.<rule>``).
* ``column`` -- the landing column the rule is about (a typed shadow column such as
  ``pain_score__typed`` is reported under its raw column ``pain_score``).
* ``message`` -- a ``str.format`` template with ``{value}`` (the raw offending string).
* ``depends_on`` -- rule ids that, when they fail on the same row, make this failure
  redundant (a score that is not a number is not ALSO reported as out of range).
* ``blocking`` -- table-level rules whose failure stops validation (``SchemaError``).

Typed shadow columns (``<column>__typed``) are built by the runner
(``pipeline/gx_frame.py``): numbers parsed from the values that look like numbers,
timestamps with ``pipeline.typing_rules.parse_instants`` (ISO-8601, offsets converted to
UTC, no offset = UTC, anything else NaT). Beside each timestamp's typed shadow,
``<column>__unparsed`` holds the raw value where it is not empty and did not parse (else
null), so "is a real date/time" is a plain null check, not a GX row condition: under a
row condition GX filters and copies the whole frame for every metric of that expectation
(8 of 21 s at 10 M rows, docs/performance.md). ``now`` and ``current_year`` are suite
parameters supplied at validation time, so tests can pin "now".
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.core import ExpectationSuite
from great_expectations.expectations.metadata_types import FailureSeverity

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from pipeline.gx_expectations import (  # noqa: E402
    ExpectColumnValuesToBeUniqueVectorised,
    ExpectColumnValuesToMatchRegexVectorised,
    ExpectCompoundColumnsToBeUniqueVectorised,
)
from pipeline.schema import LANDING_REQUIRED, ROUTES, SEXES  # noqa: E402

DATASOURCE = "relief_staging"
BATCH_DEFINITION = "staging_frame"
TYPED_SUFFIX = "__typed"
UNPARSED_SUFFIX = "__unparsed"

SEVERITIES = ("mild", "moderate", "severe")
EARLIEST_TIMESTAMP = "1990-01-01T00:00:00+00:00"
NOW = {"$PARAMETER": "now"}
CURRENT_YEAR = {"$PARAMETER": "current_year"}

# Anchored: the regex check is a search (RE2 in Arrow, or the SQL engine's), not a full match.
INTEGER_RE = r"^[+-]?\d+$"
DECIMAL_RE = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$"
TIMESTAMP_RE = (
    r"^\d{4}-\d{2}-\d{2}"  # date
    r"(?:T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?)?$"  # optional time, zone
)

# Typed columns per table: column -> "integer" | "decimal" | "timestamp".
TYPED: dict[str, dict[str, str]] = {
    "patients": {"birth_year": "integer"},
    "treatments": {
        "administered_at": "timestamp",
        "duration_min": "decimal",
        "dose_mg": "decimal",
        "weight_kg": "decimal",
    },
    "pain_assessments": {"assessed_at": "timestamp", "pain_score": "integer"},
    "adverse_events": {"recorded_at": "timestamp"},
}

NOT_NULL: dict[str, tuple[str, ...]] = {
    "patients": ("patient_id",),
    "treatments": ("treatment_id", "patient_id", "administered_at", "route", "dose_mg"),
    "pain_assessments": ("assessment_id", "patient_id", "assessed_at", "pain_score"),
    "adverse_events": ("treatment_id", "patient_id", "recorded_at", "event"),
}

UNIQUE: dict[str, tuple[str, ...]] = {
    "patients": ("patient_id",),
    "treatments": ("treatment_id",),
    "pain_assessments": ("assessment_id",),
    "adverse_events": (),
}

# (rule suffix, columns, message); timestamps are compared as typed instants.
COMPOUND_UNIQUE: dict[str, tuple[tuple[str, tuple[str, ...], str], ...]] = {
    "pain_assessments": (
        (
            "patient_id_assessed_at.unique",
            ("patient_id", "assessed_at"),
            "more than one pain score for this patient at assessed_at '{value}'",
        ),
    ),
    "adverse_events": (
        (
            "treatment_id_event_recorded_at.unique",
            ("treatment_id", "event", "recorded_at"),
            "duplicate adverse event for this treatment and event at recorded_at '{value}'",
        ),
    ),
}

VALUE_SETS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "patients": (("sex", SEXES),),
    "treatments": (("route", ROUTES),),
    "adverse_events": (("severity", SEVERITIES),),
}

# (column, rule suffix, min, max, strict_min, message)
RANGES: dict[str, tuple[tuple[str, str, object, object, bool, str], ...]] = {
    "patients": (
        ("birth_year", "between_1900_current_year", 1900, CURRENT_YEAR, False,
         "birth_year '{value}' is outside 1900 to the current year"),
    ),
    "treatments": (
        ("dose_mg", "gt_0_le_500", 0, 500, True, "dose_mg '{value}' is outside (0, 500] mg"),
        ("weight_kg", "between_20_300", 20, 300, False, "weight_kg '{value}' is outside 20–300 kg"),
        ("duration_min", "between_0_1440", 0, 1440, False,
         "duration_min '{value}' is outside 0–1440 minutes"),
    ),
    "pain_assessments": (
        ("pain_score", "between_0_10", 0, 10, False, "pain_score '{value}' is outside 0–10"),
    ),
    "adverse_events": (),
}  # fmt: skip

TYPE_WORDS = {
    "integer": ("is_integer", INTEGER_RE, "is not a whole number"),
    "decimal": ("is_decimal", DECIMAL_RE, "is not a number"),
    "timestamp": (
        "is_iso8601",
        TIMESTAMP_RE,
        "is not an ISO-8601 date or timestamp (YYYY-MM-DD[THH:MM:SS[.f][Z|±HH:MM]])",
    ),
}


def _meta(rule_id: str, column: str | None, message: str, **extra: object) -> dict:
    meta: dict = {"rule_id": rule_id, "column": column, "message": message}
    meta.update({k: v for k, v in extra.items() if v})
    return meta


def _stable_id(rule_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"relief:{rule_id}"))


def expectations_for(table: str) -> list[gxe.Expectation]:
    """The ordered expectations of one landing table's suite."""
    required = LANDING_REQUIRED[table]
    typed = TYPED[table]
    out: list[gxe.Expectation] = []

    out.append(
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(required),
            exact_match=False,
            severity=FailureSeverity.CRITICAL,
            description=f"{table} must have the landing contract's required columns",
            meta=_meta(
                f"{table}.required_columns_present",
                None,
                f"{table} is missing required column(s): {{value}}",
                blocking=True,
            ),
        )
    )
    for col in NOT_NULL[table]:
        out.append(
            gxe.ExpectColumnValuesToNotBeNull(
                column=col,
                meta=_meta(f"{table}.{col}.not_null", col, f"{col} is empty"),
            )
        )
    for col in UNIQUE[table]:
        out.append(
            ExpectColumnValuesToBeUniqueVectorised(
                column=col,
                meta=_meta(
                    f"{table}.{col}.unique", col, f"{col} '{{value}}' occurs more than once"
                ),
            )
        )
    for col, kind in typed.items():
        word, regex, text = TYPE_WORDS[kind]
        out.append(
            ExpectColumnValuesToMatchRegexVectorised(
                column=col,
                regex=regex,
                meta=_meta(f"{table}.{col}.{word}", col, f"{col} '{{value}}' {text}"),
            )
        )
        if kind == "timestamp":
            # Matches the pattern but is no calendar instant (2024-02-30, 25:00:00).
            out.append(
                gxe.ExpectColumnValuesToBeNull(
                    column=col + UNPARSED_SUFFIX,
                    meta=_meta(
                        f"{table}.{col}.valid_datetime",
                        col,
                        f"{col} '{{value}}' is not a real date/time",
                        depends_on=[f"{table}.{col}.{word}"],
                    ),
                )
            )
            out.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=col + TYPED_SUFFIX,
                    min_value=EARLIEST_TIMESTAMP,
                    max_value=NOW,
                    meta=_meta(
                        f"{table}.{col}.between_1990_now",
                        col,
                        f"{col} '{{value}}' is before 1990-01-01 or in the future",
                        depends_on=[f"{table}.{col}.{word}", f"{table}.{col}.valid_datetime"],
                    ),
                )
            )
    for col, allowed in VALUE_SETS.get(table, ()):
        out.append(
            gxe.ExpectColumnValuesToBeInSet(
                column=col,
                value_set=list(allowed),
                meta=_meta(
                    f"{table}.{col}.in_set",
                    col,
                    f"{col} '{{value}}' is not one of {', '.join(allowed)}",
                ),
            )
        )
    for col, suffix, lo, hi, strict_min, message in RANGES[table]:
        word = TYPE_WORDS[typed[col]][0]
        out.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=col + TYPED_SUFFIX,
                min_value=lo,
                max_value=hi,
                strict_min=strict_min,
                meta=_meta(
                    f"{table}.{col}.{suffix}",
                    col,
                    message,
                    depends_on=[f"{table}.{col}.{word}"],
                ),
            )
        )
    for suffix, cols, message in COMPOUND_UNIQUE.get(table, ()):
        shadow = [c + TYPED_SUFFIX if typed.get(c) == "timestamp" else c for c in cols]
        last = cols[-1]
        deps = [f"{table}.{c}.{TYPE_WORDS[typed[c]][0]}" for c in cols if c in typed]
        out.append(
            ExpectCompoundColumnsToBeUniqueVectorised(
                column_list=shadow,
                ignore_row_if="any_value_is_missing",
                meta=_meta(f"{table}.{suffix}", last, message, depends_on=deps),
            )
        )

    ids = [e.meta["rule_id"] for e in out]
    assert len(ids) == len(set(ids)), f"duplicate rule ids in {table}: {ids}"
    return out


def build(context_root: Path = ROOT) -> list[Path]:
    """Write every suite and make sure the data source exists; return the suite files."""
    context = gx.get_context(mode="file", context_root_dir=context_root)

    try:
        datasource = context.data_sources.get(DATASOURCE)
    except (KeyError, ValueError, LookupError):
        datasource = context.data_sources.add_pandas(DATASOURCE)
    for table in LANDING_REQUIRED:
        if table not in datasource.get_asset_names():
            asset = datasource.add_dataframe_asset(table)
            asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)

    written = []
    for table in LANDING_REQUIRED:
        suite = context.suites.add_or_update(
            ExpectationSuite(
                name=table,
                expectations=expectations_for(table),
                meta={"generated_by": "expectations/build_suites.py", "table": table},
            )
        )
        # GX gives a new suite and its expectations random ids; pin them to the rule id so that
        # regenerating from scratch writes byte-identical JSON.
        suite.id = _stable_id(f"suite:{table}")
        for exp in suite.expectations:
            exp.id = _stable_id(exp.meta["rule_id"])
        suite.save()
        written.append(context_root / "suites" / f"{table}.json")
    return written


if __name__ == "__main__":
    for path in build():
        print(path.relative_to(ROOT.parent))
