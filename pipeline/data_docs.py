"""GX Data Docs (static HTML) for one run's validation, built into the run's report folder.

The report stage runs apart from validation (another Airflow task, maybe another
machine), so the docs are rebuilt from what validation stored in the warehouse:
``dq.validation_results`` holds every rule's rows checked and rows failed per delivery
and table. ``build_data_docs`` turns those rows into GX validation results of the
suites under ``expectations/`` (the cross-table SQL rules appear as GX
``unexpected_rows_expectation``\\s) inside an *ephemeral* GX context whose only Data
Docs site is ``<report_dir>/<run_id>/data_docs/``. Nothing is written to the repo's
``expectations/`` folder, and a failure to build the docs never fails the report.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import cross_checks
from pipeline.warehouse import Warehouse

log = logging.getLogger(__name__)

SITE = "relief_run"
DQ_COLUMNS = ("delivery_id", "source_table", "rule_id", "rows_checked", "rows_failed", "success")


def run_results(wh: Warehouse, run_id: str) -> pd.DataFrame:
    """The run's rows of dq.validation_results: what ``build_data_docs`` renders."""
    dq = wh.table("dq", "validation_results")
    return wh.read("dq", "validation_results", dq.c.run_id == run_id)


def build_data_docs(run_id: str, report_dir: Path | str, results: pd.DataFrame) -> Path | None:
    """Write GX Data Docs for ``results`` (dq rows of one run) to ``<report_dir>/<run_id>/data_docs/``.

    Returns the site's ``index.html``, or None when there is nothing to show (the run
    validated no delivery) or GX could not build the site (logged as a warning: the
    HTML report does not depend on it).
    """
    if results is None or results.empty:
        return None
    out = Path(report_dir).resolve() / run_id / "data_docs"
    try:
        return _build(run_id, out, results)
    except Exception as exc:  # GX rendering problems must not cost the run its report
        log.warning("GX Data Docs for run %s not built: %s", run_id, exc)
        return None


def _build(run_id: str, out: Path, results: pd.DataFrame) -> Path:
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from pipeline.gx_context import quiet_gx

    quiet_gx()
    out.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="ephemeral")
    context.add_data_docs_site(
        SITE,
        {
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(out),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    gx_run = RunIdentifier(run_name=run_id)
    identifiers = []
    for table, rows in results.groupby("source_table", sort=True):
        suite = context.suites.add(_suite(str(table)))
        expectations = {e.meta["rule_id"]: e for e in suite.expectations}
        for delivery_id, part in rows.groupby("delivery_id", sort=True):
            result = _suite_result(suite.name, expectations, part, run_id, str(delivery_id))
            key = ValidationResultIdentifier(
                ExpectationSuiteIdentifier(suite.name), gx_run, str(delivery_id)
            )
            context.validation_results_store.set(key, result)
            identifiers.append(key)
    context.build_data_docs(site_names=[SITE])
    return out / "index.html"


def _suite(table: str) -> Any:
    """The repo suite of ``table`` (a copy) plus its cross-table rules."""
    import great_expectations.expectations as gxe
    from great_expectations.core import ExpectationSuite

    from pipeline.gx_context import DEFAULT_CONTEXT_ROOT, load_suite, root_of

    stored = load_suite(root_of(DEFAULT_CONTEXT_ROOT), table)
    expectations = [e.configuration.to_domain_obj() for e in stored.expectations]
    for rule in cross_checks.RULES:
        if rule.table != table:
            continue
        expectations.append(
            gxe.UnexpectedRowsExpectation(
                unexpected_rows_query=(
                    f"-- relief cross-table rule {rule.rule_id} (SQLAlchemy Core, "
                    f"pipeline/cross_checks.py): rows of {{batch}} where not: {rule.checks}"
                ),
                description=f"{rule.rule_id}: {rule.checks}",
                meta={"rule_id": rule.rule_id, "column": rule.column},
            )
        )
    for e in expectations:
        e.id = None
    return ExpectationSuite(name=table, expectations=expectations)


def _suite_result(
    suite_name: str,
    expectations: dict[str, Any],
    rows: pd.DataFrame,
    run_id: str,
    delivery_id: str,
) -> Any:
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.core.expectation_validation_result import (
        ExpectationValidationResult,
    )

    results = []
    for row in rows.itertuples():
        expectation = expectations.get(row.rule_id)
        if expectation is None:  # the per-table total, or a rule since removed
            continue
        checked, failed = int(row.rows_checked or 0), int(row.rows_failed or 0)
        detail: dict[str, Any] = {
            "element_count": checked,
            "unexpected_count": failed,
            "unexpected_percent": 100.0 * failed / checked if checked else 0.0,
            "missing_count": 0,
            "observed_value": failed,
        }
        results.append(
            ExpectationValidationResult(
                success=bool(row.success),
                expectation_config=expectation.configuration,
                result=detail,
            )
        )
    passed = sum(r.success for r in results)
    return ExpectationSuiteValidationResult(
        success=passed == len(results),
        results=results,
        suite_name=suite_name,
        statistics={
            "evaluated_expectations": len(results),
            "successful_expectations": passed,
            "unsuccessful_expectations": len(results) - passed,
            "success_percent": 100.0 * passed / len(results) if results else 100.0,
        },
        meta={
            "run_id": run_id,
            "active_batch_definition": {"datasource_name": "relief_staging",
                                        "data_asset_name": suite_name,
                                        "batch_identifiers": {"delivery_id": delivery_id}},
            "batch_spec": {"delivery_id": delivery_id},
            "batch_markers": {},
        },
    )  # fmt: skip
