"""The pipeline's stages as plain functions: what the DAG tasks, the CLI and the tests call.

Each stage opens the warehouse named in ``Settings``, does one thing, records its row
counts and duration in the run's lineage, logs them as one JSON line, and returns a
small JSON-able dict (an Airflow XCom needs nothing bigger).

Every stage is idempotent for a given run id: results are replaced per run id, ingest is
content-addressed and validation promotes by natural key, so a cleared or retried task
(or a whole re-run of the same run id) leaves the warehouse as one clean run would.
The DAGs derive the run id from Airflow's run id (``relief_run_id``) for that reason.

``analyse_*`` are the stages of an analyst's run (``relief_analysis``): they read core
but never write it; episodes and results go under the analysis run's own id.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
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
    resume: bool = False,
) -> str:
    """Create the schema if needed and open a run; returns its run id.

    With ``resume`` (the DAGs: a cleared ``begin`` task) an existing run keeps its
    lineage row, so re-running ``begin`` alone changes nothing; a failed run goes back
    to ``running``. Without it, re-using a run id resets its lineage row.
    """
    wh = Warehouse(settings.warehouse_url)
    wh.create_schema()
    run_id = run_id or runs.new_run_id()
    if resume and (existing := runs.get_run(wh, run_id)):
        if existing["status"] != "success":
            runs.set_fields(wh, run_id, status="running", error=None)
        log_event("run_resumed", run_id=run_id, status=existing["status"])
        return run_id
    parameters = {**settings.parameters(), "landing": str(landing) if landing else None}
    runs.start_run(wh, run_id, parameters=parameters, trigger=trigger, dag_run_id=dag_run_id)
    log_event("run_started", run_id=run_id, trigger=trigger, warehouse=repr(wh))
    return run_id


def log_event(event: str, **fields: Any) -> None:
    """One structured log line: ``relief {"event": ..., ...}`` (grep-able, JSON-parseable)."""
    log.info("relief %s", json.dumps({"event": event, **fields}, default=str, sort_keys=True))


def is_transient(exc: BaseException) -> bool:
    """Errors worth a retry: the database went away, a delivery is still being written."""
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

    return isinstance(
        exc,
        OperationalError | InterfaceError | DisconnectionError | ConnectionError | TimeoutError,
    )


def _timed(
    stage: str, settings: Settings, run_id: str, work: Callable[[Warehouse], dict[str, Any]]
) -> dict[str, Any]:
    wh = Warehouse(settings.warehouse_url)
    started = time.perf_counter()
    log_event("stage_started", run_id=run_id, stage=stage)
    try:
        counts = work(wh)
    except Exception as exc:
        log_event("stage_failed", run_id=run_id, stage=stage, error=str(exc)[:500])
        if not is_transient(exc):  # a transient error is retried; the last failure marks it
            runs.finish_run(wh, run_id, "failed", f"{stage}: {exc}")
        raise
    seconds = time.perf_counter() - started
    runs.record_stage(wh, run_id, stage, counts, seconds)
    log_event("stage_done", run_id=run_id, stage=stage, seconds=round(seconds, 3), counts=counts)
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


def derive(settings: Settings, run_id: str, *, full: bool = False) -> dict[str, Any]:
    """Bring the current episodes up to date with core: only the patients that new
    deliveries touched, or every patient on the first run, a changed outcome definition
    or on request (``full`` or ``settings.full_derive``); see ``pipeline.derive_stage``."""
    from pipeline.derive_stage import derive_current

    return _timed(
        "derive",
        settings,
        run_id,
        lambda wh: derive_current(wh, run_id, settings.outcome, full=full or settings.full_derive),
    )


def model(settings: Settings, run_id: str, *, refit: bool = False) -> dict[str, Any]:
    """Survival models on the current episodes, written to results.*, when the refit
    policy says so (``runs.decide_refit``; ``refit`` or ``settings.refit.always`` forces it).

    Otherwise returns ``{"skipped": why, "last_fit": run id}`` and ends the run as
    ``no_refit``: the report is not rendered either (the DAG shows both tasks skipped)
    and the last fit's results and report stay the current ones.
    """

    def work(wh: Warehouse) -> dict[str, Any]:
        decision = runs.refit_decision(wh, run_id, settings, requested=refit)
        if not decision.refit:
            runs.clear_run_rows(wh, run_id)  # an earlier attempt of this run may have fitted
            return {"skipped": decision.reason, "last_fit": decision.last_fit}
        from pipeline.derive_stage import snapshot_episodes
        from pipeline.modelling import fit_and_store  # imports lifelines and statsmodels

        log_event("progress", run_id=run_id, stage="model", step="refit", why=decision.reason)
        snapshot_episodes(wh, run_id)
        return {**fit_and_store(wh, run_id, settings.models), "refit": decision.reason}

    counts = _timed("model", settings, run_id, work)
    if counts.get("skipped"):
        runs.finish_run(Warehouse(settings.warehouse_url), run_id, "no_refit")
        log_event("run_finished", run_id=run_id, status="no_refit", why=counts["skipped"])
    return counts


def report(settings: Settings, run_id: str) -> dict[str, Any]:
    """The run's HTML report; marks the run successful. A run whose model stage the refit
    policy skipped has no results of its own: it keeps the last fit's report."""
    from pipeline.report import write_report

    wh = Warehouse(settings.warehouse_url)
    if (runs.get_run(wh, run_id) or {}).get("status") == "no_refit":
        log_event("stage_skipped", run_id=run_id, stage="report", why="model not refitted")
        return {"skipped": "model not refitted"}

    def work(wh: Warehouse) -> dict[str, Any]:
        path = write_report(wh, run_id, settings)
        runs.set_fields(wh, run_id, report_path=str(path))
        return {"report": str(path)}

    counts = _timed("report", settings, run_id, work)
    runs.finish_run(wh, run_id, "success")
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
    report: str  # this run's report, or the last fit's when the model was not refitted
    counts: dict[str, dict[str, Any]]
    kept_fit: str | None = None  # the run whose results stay current (no refit)


def run_all(
    settings: Settings, landing: str | Path, *, trigger: str = "cli", run_id: str | None = None
) -> RunSummary:
    """Every stage in order, in-process: the same functions the DAG tasks call.

    When the refit policy keeps the last fit, the report stage is skipped as in the DAG.
    """
    run_id = begin(settings, run_id=run_id, trigger=trigger, landing=landing)
    counts = {
        "ingest": ingest(settings, run_id, landing),
        "validate": validate(settings, run_id),
        "derive": derive(settings, run_id),
        "model": model(settings, run_id),
    }
    if counts["model"].get("skipped"):
        kept = counts["model"].get("last_fit")
        last = runs.get_run(Warehouse(settings.warehouse_url), kept) if kept else None
        report_path = (last or {}).get("report_path") or ""
        return RunSummary(run_id=run_id, report=report_path, counts=counts, kept_fit=kept)
    counts["report"] = report(settings, run_id)
    return RunSummary(run_id=run_id, report=counts["report"]["report"], counts=counts)


# --- Airflow edge ---------------------------------------------------------------------


def relief_run_id(prefix: str, dag_run_id: str) -> str:
    """A stable relief run id for an Airflow run: clearing and re-running reuse it.

    Airflow run ids (``manual__2026-01-01T02:30:00+00:00``) are made safe for the
    64-character ``run_id`` column; over-long ones keep a hash suffix so they stay unique.
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", dag_run_id).strip("-")
    run_id = f"{prefix}-{safe}"
    if len(run_id) > 64:
        run_id = f"{run_id[:51]}-{hashlib.sha256(dag_run_id.encode()).hexdigest()[:12]}"
    return run_id


def run_task(stage: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a stage from an Airflow task: an input or settings error fails without retries.

    Data errors (a bad delivery, blocked validation, bad parameters, nothing to analyse)
    will not fix themselves, so they become ``AirflowFailException``; anything else
    (the database gone, a delivery still being written) goes through the task's retries.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from pipeline.analysis_params import AnalysisParamsError
    from pipeline.errors import user_errors

    try:
        return stage(*args, **kwargs)
    except (*user_errors(), AnalysisParamsError) as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def fail_from_context(settings: Settings, prefix: str, context: dict[str, Any]) -> None:
    """Airflow failure callback: mark the run failed in model_runs with the error."""
    dag_run_id = context.get("run_id") or ""
    if not dag_run_id:
        return
    ti = context.get("ti")
    task = getattr(ti, "task_id", None) or "dag"
    error = context.get("exception") or context.get("reason") or "failed"
    run_id = relief_run_id(prefix, dag_run_id)
    wh = Warehouse(settings.warehouse_url)
    current = runs.get_run(wh, run_id) if wh.has_table("results", "model_runs") else None
    if current and not (current["status"] == "failed" and current.get("error")):
        # A stage that failed on data already recorded the precise error; keep it.
        runs.finish_run(wh, run_id, "failed", f"Airflow task {task}: {error}"[:2000])
        log_event("run_failed", run_id=run_id, task=task, error=str(error)[:500])


# --- nightly: one mapped task per delivery ----------------------------------------------

INCOMPLETE_MARKERS = (".part", ".tmp", ".partial", ".incomplete")


class DeliveryIncomplete(TimeoutError):
    """A delivery is still being written (a ``*.part``/``*.tmp`` file or ``.incomplete``
    marker is present); transient, so the task is retried with back-off."""


def new_deliveries(settings: Settings, landing: str | Path) -> list[str]:
    """The delivery folders under ``landing`` (each becomes one mapped ingest task).

    Already-loaded deliveries are listed too: ingest skips them by content hash, cheaply.
    """
    from pipeline.sources.landing import find_deliveries

    folders = find_deliveries(Path(landing))
    for folder in folders:
        partial = sorted(
            p.name for p in folder.iterdir() if p.name.lower().endswith(INCOMPLETE_MARKERS)
        )
        if partial:
            raise DeliveryIncomplete(
                f"{folder}: still being written ({', '.join(partial)}); retrying later"
            )
    log_event("deliveries_found", landing=str(landing), deliveries=len(folders))
    return [str(f) for f in folders]


def ingest_delivery(settings: Settings, run_id: str, folder: str | Path) -> dict[str, Any]:
    """Load one delivery folder (one mapped task); lineage is recorded by ``ingest_summary``."""
    from pipeline.ingest import load_delivery

    wh = Warehouse(settings.warehouse_url)
    started = time.perf_counter()
    outcome = load_delivery(wh, Path(folder), settings.pseudonym_key)
    result = {
        "delivery_id": outcome.delivery_id,
        "status": outcome.status,
        "rows": outcome.rows,
        "error": outcome.error,
    }
    log_event(
        "delivery_ingested",
        run_id=run_id,
        folder=str(folder),
        seconds=round(time.perf_counter() - started, 3),
        **result,
    )
    return result


def ingest_summary(
    settings: Settings, run_id: str, outcomes: list[dict[str, Any]]
) -> dict[str, Any]:
    """Record the mapped ingest tasks' outcomes as the run's ``ingest`` stage, in one write."""

    def work(wh: Warehouse) -> dict[str, Any]:
        outcomes_ = sorted(outcomes, key=lambda o: o["delivery_id"])
        fingerprint = ",".join(o["delivery_id"] for o in outcomes_ if o["status"] != "failed")
        runs.set_fields(wh, run_id, input_fingerprint=fingerprint)
        return {
            "deliveries": {o["delivery_id"]: o["status"] for o in outcomes_},
            "rows": sum(o["rows"] for o in outcomes_),
            "failed": [o["error"] for o in outcomes_ if o["error"]],
        }

    return _timed("ingest", settings, run_id, work)


# --- relief_analysis: an analyst's run, never touching core -------------------------------


def begin_analysis(
    settings: Settings, run_id: str, request: Any, dag_run_id: str | None = None
) -> str:
    """Open an analyst run; its parameters (the whole request) go into model_runs."""
    wh = Warehouse(settings.warehouse_url)
    wh.create_schema()
    if (existing := runs.get_run(wh, run_id)) and existing["trigger"] == "analyst":
        if existing["status"] != "success":  # a cleared task or run: keep its lineage
            runs.set_fields(wh, run_id, status="running", error=None)
        log_event("run_resumed", run_id=run_id, status=existing["status"])
        return run_id
    parameters = {"analysis": request.parameters(), "warehouse": repr(wh)}
    runs.start_run(wh, run_id, parameters=parameters, trigger="analyst", dag_run_id=dag_run_id)
    log_event("run_started", run_id=run_id, trigger="analyst")
    return run_id


def analyse_derive(settings: Settings, run_id: str, request: Any) -> dict[str, Any]:
    """Episodes from core with the request's outcome definition, then its cohort filter.

    Both steps write only ``analysis.episodes`` rows of this run id (replaced, never
    appended), so a retry or a re-run leaves the same rows.
    """
    from pipeline.cohort import apply_cohort
    from pipeline.derive_stage import derive_and_store, read_episodes

    def work(wh: Warehouse) -> dict[str, Any]:
        derived = derive_and_store(wh, run_id, request.outcome)
        log_event("progress", run_id=run_id, stage="derive", step="episodes", counts=derived)
        episodes = read_episodes(wh, run_id).drop(columns=["run_id"])
        assessments = (
            wh.read("core", "pain_assessments") if request.cohort.min_follow_up_days > 0 else None
        )
        kept = apply_cohort(episodes, request.cohort, assessments)
        with wh.begin() as conn:
            wh.replace_run_rows(conn, "analysis", "episodes", run_id, kept)
        log_event("progress", run_id=run_id, stage="derive", step="cohort", kept=len(kept))
        return {
            "derived": derived["episodes"],
            "episodes": len(kept),
            "responders": int(kept["responded"].astype(bool).sum()) if len(kept) else 0,
            "events": int(kept["event"].fillna(0).sum()) if len(kept) else 0,
        }

    return _timed("derive", settings, run_id, work)


def analyse_model(settings: Settings, run_id: str, request: Any) -> dict[str, Any]:
    """Fit the request's chosen models on the run's episodes (the others are not fitted
    and keep no rows for this run); marks the analyst run successful."""
    from pipeline.modelling import fit_and_store

    counts = _timed("model", settings, run_id, lambda wh: fit_and_store(wh, run_id, request.models))
    runs.finish_run(Warehouse(settings.warehouse_url), run_id, "success")
    log_event("run_finished", run_id=run_id, status="success")
    return counts


def analyse(settings: Settings, run_id: str, request: Any) -> dict[str, dict[str, Any]]:
    """An analyst's whole run in-process: the same functions the relief_analysis tasks call."""
    begin_analysis(settings, run_id, request)
    return {
        "derive": analyse_derive(settings, run_id, request),
        "model": analyse_model(settings, run_id, request),
    }
