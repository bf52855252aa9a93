"""relief_analysis: an analyst's run with their own cohort, outcome definition and models.

Triggered by hand (UI, ``airflow dags trigger relief_analysis --conf '{...}'``, REST
API) or by the ``relief_core`` Asset that ``relief_nightly`` publishes when it refits (core
changed enough, by its refit policy). Every choice is an Airflow ``Param`` with a JSON schema (see
``pipeline.analysis_params``): Airflow rejects a bad value at trigger time naming the
param, and ``check`` re-validates the whole conf (cross-field rules, unknown keys)
before any work. The run reads core but never writes it; its episodes and results go
under its own run id (``a-<airflow run id>``) with trigger ``analyst``. It always derives
from all of core and always fits: the nightly run's incremental derive and refit policy
do not apply to an analyst's run.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, task

CORE_ASSET = Asset(name="relief_core", uri="x-relief://warehouse/core")
PREFIX = "a"


def _params() -> dict:
    from pipeline.analysis_params import PARAM_SCHEMAS

    return {
        name: Param(default, description=description, section=section, **schema)
        for name, (default, schema, section, description) in PARAM_SCHEMAS.items()
    }


def _settings():
    from pipeline.config import from_env

    return from_env()


def _request(params, dag_run):
    """The validated request: declared params plus any extra conf key (rejected by name)."""
    from pipeline.analysis_params import parse_request

    conf = dict(getattr(dag_run, "conf", None) or {})
    return parse_request({**dict(params or {}), **conf})


def _run_id(run_id: str) -> str:
    from pipeline.stages import relief_run_id

    return relief_run_id(PREFIX, run_id)


def _mark_failed(context) -> None:
    from pipeline.stages import fail_from_context

    fail_from_context(_settings(), PREFIX, context)


@dag(
    dag_id="relief_analysis",
    schedule=[CORE_ASSET],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    default_args={
        "retries": int(os.environ.get("RELIEF_TASK_RETRIES", "2")),
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=15),
        "on_failure_callback": _mark_failed,
    },
    on_failure_callback=_mark_failed,
    params=_params(),
    tags=["relief"],
    doc_md=__doc__,
)
def relief_analysis():
    @task
    def check(params=None, dag_run=None, run_id=None) -> str:
        from pipeline.stages import begin_analysis, run_task

        request = run_task(_request, params, dag_run)
        return run_task(begin_analysis, _settings(), _run_id(run_id), request, dag_run_id=run_id)

    @task
    def derive(relief_run: str, params=None, dag_run=None) -> dict:
        from pipeline.stages import analyse_derive, run_task

        return run_task(analyse_derive, _settings(), relief_run, _request(params, dag_run))

    @task
    def model(relief_run: str, params=None, dag_run=None) -> dict:
        from pipeline.stages import analyse_model, run_task

        return run_task(analyse_model, _settings(), relief_run, _request(params, dag_run))

    relief_run = check()
    derive(relief_run) >> model(relief_run)


relief_analysis()
