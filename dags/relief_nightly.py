"""relief_nightly: new landing deliveries -> ingest -> validate -> derive -> model -> report.

Wiring only: each task is one call into ``pipeline.stages`` (imported inside the task,
so parsing this file stays cheap). Settings come from the environment
(RELIEF_WAREHOUSE_URL, RELIEF_PSEUDONYM_KEY, RELIEF_LANDING_DIR, ...) via
``pipeline.config``; the ``landing`` param overrides the landing folder for one run.

* Schedule: daily at 02:00 UTC (``RELIEF_NIGHTLY_CRON`` overrides it); no catch-up, one
  active run at a time.
* Ingest is mapped over the delivery folders, so workers share the load.
* Retries with exponential back-off for transient errors (database gone, a delivery
  still being written); data errors fail at once (``stages.run_task``).
* The relief run id is derived from Airflow's run id, so clearing a task or the whole
  run re-does the same run; a run that fails is marked failed in ``model_runs``.
* ``model`` publishes the ``relief_core`` Asset when it refits (core has changed enough
  to refit, by the refit policy below), which triggers ``relief_analysis``; a night
  whose model stage is skipped publishes nothing, so analysts' standing analyses are
  refreshed on the registry's refit cadence, not re-derived and refitted every night.
* ``derive`` re-derives only the patients the new deliveries touched (param
  ``full_derive``: every patient). ``model`` refits only when the refit policy says so
  (``pipeline.runs.decide_refit``; param ``refit`` forces it); otherwise it is skipped
  with the reason in its log, ``report`` is skipped after it, and the run ends
  ``no_refit`` in ``model_runs`` with the last fit's results and report still current.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, task

CORE_ASSET = Asset(name="relief_core", uri="x-relief://warehouse/core")
PREFIX = "n"


def _settings():
    from pipeline.config import from_env

    return from_env()


def _run_id(run_id: str) -> str:
    from pipeline.stages import relief_run_id

    return relief_run_id(PREFIX, run_id)


def _mark_failed(context) -> None:
    """Failure callback (task and DAG): the run's lineage row says failed, with the error."""
    from pipeline.stages import fail_from_context

    fail_from_context(_settings(), PREFIX, context)


@dag(
    dag_id="relief_nightly",
    schedule=os.environ.get("RELIEF_NIGHTLY_CRON", "0 2 * * *"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": int(os.environ.get("RELIEF_TASK_RETRIES", "3")),
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "on_failure_callback": _mark_failed,
    },
    on_failure_callback=_mark_failed,
    params={
        "landing": Param(
            "",
            type="string",
            description="Landing folder (a delivery or a folder of deliveries); "
            "empty = $RELIEF_LANDING_DIR",
        ),
        "full_derive": Param(
            False,
            type="boolean",
            description="Re-derive every patient's episodes, not only those new deliveries touched",
        ),
        "refit": Param(
            False,
            type="boolean",
            description="Refit the models and render the report even when the refit policy "
            "would keep the last fit",
        ),
    },
    tags=["relief"],
    doc_md=__doc__,
)
def relief_nightly():
    @task
    def begin(params=None, run_id=None) -> str:
        from pipeline.stages import begin, landing_from, run_task

        return run_task(
            begin,
            _settings(),
            run_id=_run_id(run_id),
            trigger="schedule",
            dag_run_id=run_id,
            landing=landing_from(params),
            resume=True,
        )

    @task
    def find_deliveries(relief_run: str, params=None) -> list[str]:
        from pipeline.stages import landing_from, new_deliveries, run_task

        return run_task(new_deliveries, _settings(), landing_from(params))

    @task(max_active_tis_per_dagrun=4)
    def ingest_delivery(folder: str, relief_run: str) -> dict:
        from pipeline.stages import ingest_delivery, run_task

        return run_task(ingest_delivery, _settings(), relief_run, folder)

    @task(trigger_rule="none_failed")  # runs (and records zero rows) when nothing was mapped
    def ingest(relief_run: str, outcomes: list[dict]) -> dict:
        from pipeline.stages import ingest_summary, run_task

        return run_task(ingest_summary, _settings(), relief_run, list(outcomes))

    @task
    def validate(relief_run: str) -> dict:
        from pipeline.stages import run_task, validate

        return run_task(validate, _settings(), relief_run)

    @task
    def derive(relief_run: str, params=None) -> dict:
        from pipeline.stages import derive, run_task

        full = bool((params or {}).get("full_derive"))
        return run_task(derive, _settings(), relief_run, full=full)

    @task(outlets=[CORE_ASSET])  # no Asset event when skipped: no refit, no analyst re-run
    def model(relief_run: str, params=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from pipeline.stages import model, run_task

        done = run_task(model, _settings(), relief_run, refit=bool((params or {}).get("refit")))
        if done.get("skipped"):  # the refit policy kept the last fit; report is skipped too
            raise AirflowSkipException(f"models not refitted: {done['skipped']}")
        return done

    @task
    def report(relief_run: str) -> dict:
        from pipeline.stages import report, run_task

        return run_task(report, _settings(), relief_run)

    relief_run = begin()
    folders = find_deliveries(relief_run)
    loaded = ingest(
        relief_run, ingest_delivery.partial(relief_run=relief_run).expand(folder=folders)
    )
    validated = validate(relief_run)
    derived = derive(relief_run)
    modelled = model(relief_run)
    loaded >> validated >> derived >> modelled >> report(relief_run)


relief_nightly()
