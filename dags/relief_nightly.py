"""relief_nightly: new landing deliveries -> ingest -> validate -> derive -> model -> report.

Wiring only: each task is one call into ``pipeline.stages`` (imported inside the task,
so parsing this file stays cheap). Settings come from the environment
(RELIEF_WAREHOUSE_URL, RELIEF_PSEUDONYM_KEY, RELIEF_LANDING_DIR, ...) via
``pipeline.config``; the ``landing`` param overrides the landing folder for one run.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task


def _settings():
    from pipeline.config import from_env

    return from_env()


def _mark_failed(context) -> None:
    """DAG failure callback: the run's lineage row says failed, with the task that failed."""
    from pipeline.stages import fail

    run_id = (context["ti"].xcom_pull(task_ids="begin") or "") if context.get("ti") else ""
    if run_id:
        fail(_settings(), run_id, f"Airflow task {context['ti'].task_id} failed")


@dag(
    dag_id="relief_nightly",
    schedule="30 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=5)},
    on_failure_callback=_mark_failed,
    params={
        "landing": Param(
            "",
            type="string",
            description="Landing folder (a delivery or a folder of deliveries); "
            "empty = $RELIEF_LANDING_DIR",
        ),
    },
    tags=["relief"],
    doc_md=__doc__,
)
def relief_nightly():
    @task
    def begin(params=None, run_id=None) -> str:
        from pipeline.stages import begin, landing_from

        return begin(
            _settings(), trigger="schedule", dag_run_id=run_id, landing=landing_from(params)
        )

    @task
    def ingest(relief_run: str, params=None) -> dict:
        from pipeline.stages import ingest, landing_from

        return ingest(_settings(), relief_run, landing_from(params))

    @task
    def validate(relief_run: str) -> dict:
        from pipeline.stages import validate

        return validate(_settings(), relief_run)

    @task
    def derive(relief_run: str) -> dict:
        from pipeline.stages import derive

        return derive(_settings(), relief_run)

    @task
    def model(relief_run: str) -> dict:
        from pipeline.stages import model

        return model(_settings(), relief_run)

    @task
    def report(relief_run: str) -> dict:
        from pipeline.stages import report

        return report(_settings(), relief_run)

    relief_run = begin()
    loaded = ingest(relief_run)
    validated = validate(relief_run)
    derived = derive(relief_run)
    modelled = model(relief_run)
    loaded >> validated >> derived >> modelled >> report(relief_run)


relief_nightly()
