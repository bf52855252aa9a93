"""The pipeline's stages as plain functions: what the DAG tasks, the CLI and the tests call.

Each stage opens the warehouse named in ``Settings``, does one thing, records its row
counts and duration in the run's lineage, and returns a small JSON-able dict (an
Airflow XCom needs nothing bigger).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import runs
from pipeline.config import Settings, landing_dir
from pipeline.warehouse import Warehouse

log = logging.getLogger(__name__)

STAGES = ("ingest", "validate", "derive", "model", "report")


def begin(
    settings: Settings,
    *,
    run_id: str | None = None,
    trigger: str = "cli",
    dag_run_id: str | None = None,
    landing: str | Path | None = None,
) -> str:
    """Create the schema if needed and open a run; returns its run id."""
    wh = Warehouse(settings.warehouse_url)
    wh.create_schema()
    run_id = run_id or runs.new_run_id()
    parameters = {**settings.parameters(), "landing": str(landing) if landing else None}
    runs.start_run(wh, run_id, parameters=parameters, trigger=trigger, dag_run_id=dag_run_id)
    log.info("run %s started (%s) on %r", run_id, trigger, wh)
    return run_id


def _timed(
    stage: str, settings: Settings, run_id: str, work: Callable[[Warehouse], dict[str, Any]]
) -> dict[str, Any]:
    wh = Warehouse(settings.warehouse_url)
    started = time.perf_counter()
    try:
        counts = work(wh)
    except Exception as exc:
        runs.finish_run(wh, run_id, "failed", f"{stage}: {exc}")
        raise
    runs.record_stage(wh, run_id, stage, counts, time.perf_counter() - started)
    log.info("run %s %s: %s", run_id, stage, counts)
    return counts


def ingest(settings: Settings, run_id: str, landing: str | Path) -> dict[str, Any]:
    """Load new landing deliveries into staging (pseudonymised, manifest recorded)."""
    from pipeline.ingest import ingest as load

    def work(wh: Warehouse) -> dict[str, Any]:
        outcomes = load(wh, Path(landing), settings.pseudonym_key)
        fingerprint = ",".join(sorted(o.delivery_id for o in outcomes if o.status != "failed"))
        runs.set_fields(wh, run_id, input_fingerprint=fingerprint)
        return {
            "deliveries": {o.delivery_id: o.status for o in outcomes},
            "rows": sum(o.rows for o in outcomes),
            "failed": [o.error for o in outcomes if o.error],
        }

    return _timed("ingest", settings, run_id, work)


def validate(settings: Settings, run_id: str) -> dict[str, Any]:
    """Quarantine failing rows, promote clean ones to core."""
    from pipeline.validate import validate as check

    def work(wh: Warehouse) -> dict[str, Any]:
        results = check(wh, run_id, blocking_share=settings.blocking_failure_share)
        return {
            r.delivery_id: {"in": r.rows_in, "promoted": r.promoted, "quarantined": r.quarantined}
            for r in results
        }

    return _timed("validate", settings, run_id, work)


def derive(settings: Settings, run_id: str) -> dict[str, Any]:
    """Episodes and outcomes from everything in core, stored under this run id."""
    from pipeline.derive_stage import derive_and_store

    return _timed(
        "derive", settings, run_id, lambda wh: derive_and_store(wh, run_id, settings.outcome)
    )


def model(settings: Settings, run_id: str) -> dict[str, Any]:
    """Survival models on the run's episodes, written to results.*."""
    from pipeline.modelling import fit_and_store

    return _timed("model", settings, run_id, lambda wh: fit_and_store(wh, run_id, settings.models))


def report(settings: Settings, run_id: str) -> dict[str, Any]:
    """The run's HTML report; marks the run successful."""
    from pipeline.report import write_report

    def work(wh: Warehouse) -> dict[str, Any]:
        path = write_report(wh, run_id, settings)
        runs.set_fields(wh, run_id, report_path=str(path))
        return {"report": str(path)}

    counts = _timed("report", settings, run_id, work)
    runs.finish_run(Warehouse(settings.warehouse_url), run_id, "success")
    return counts


def landing_from(params: dict[str, Any] | None) -> Path:
    """The landing folder of a DAG run: its ``landing`` param, else RELIEF_LANDING_DIR."""
    return landing_dir((params or {}).get("landing") or None)


def fail(settings: Settings, run_id: str, error: str) -> None:
    """Mark a run failed (the DAG's failure callback and the CLI call this)."""
    runs.finish_run(Warehouse(settings.warehouse_url), run_id, "failed", error)


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    report: str
    counts: dict[str, dict[str, Any]]


def run_all(
    settings: Settings, landing: str | Path, *, trigger: str = "cli", run_id: str | None = None
) -> RunSummary:
    """Every stage in order, in-process: the same functions the DAG tasks call."""
    run_id = begin(settings, run_id=run_id, trigger=trigger, landing=landing)
    counts = {
        "ingest": ingest(settings, run_id, landing),
        "validate": validate(settings, run_id),
        "derive": derive(settings, run_id),
        "model": model(settings, run_id),
    }
    counts["report"] = report(settings, run_id)
    return RunSummary(run_id=run_id, report=counts["report"]["report"], counts=counts)
