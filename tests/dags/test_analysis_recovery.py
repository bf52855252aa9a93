"""relief_analysis recovery and concurrency, on the stage functions its tasks call.

* A task killed mid-way (a real SIGKILL of the process running ``analyse_model``) and
  then retried, as Airflow's retry would, ends with exactly the rows of a clean run:
  nothing duplicated, nothing missing. Re-running any task afterwards changes nothing.
* Two analyses with different parameters running at the same time (two processes on one
  PostgreSQL warehouse) give the same results as the same two run one after the other.

What this does not prove: that Airflow's scheduler notices the kill and schedules the
retry (that is Airflow's job; the DAG sets ``retries``). It proves the part that is
ours: a retry of a half-done task leaves a clean warehouse.
"""

from __future__ import annotations

import multiprocessing
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import stages
from pipeline.analysis_params import parse_request
from pipeline.config import Settings
from pipeline.warehouse import Warehouse

pytestmark = pytest.mark.slow

REQUEST_A = {"routes": ["IV", "IM"], "response_threshold": "50%", "strata": ["route"]}
REQUEST_B = {
    "age_min": 25,
    "series_gap_days": 10,
    "horizon_days": 45,
    "models": ["km", "rmst", "cox"],
}


def load_core(url: str, landing: Path) -> None:
    settings = Settings(warehouse_url=url, demo=True)
    run_id = stages.begin(settings, trigger="test")
    stages.ingest(settings, run_id, landing)
    stages.validate(settings, run_id)


def run_rows(url: str, run_id: str) -> dict[str, list[tuple]]:
    """Every row a run wrote (analysis and results tables), without the run id, sorted."""
    import pandas as pd

    wh = Warehouse(url)
    out: dict[str, list[tuple]] = {}
    with wh.engine.connect() as conn:
        for key, table in sorted(wh.metadata.tables.items()):
            if "run_id" not in table.c or key.endswith("model_runs"):
                continue
            if not key.replace(".", "__").startswith(("analysis", "results")):
                continue
            frame = pd.read_sql(table.select().where(table.c.run_id == run_id), conn)
            frame = frame.drop(columns=["run_id"])
            out[key] = sorted(
                (
                    tuple(
                        None if pd.isna(v) else round(v, 9) if isinstance(v, float) else v
                        for v in row
                    )
                    for row in frame.itertuples(index=False, name=None)
                ),
                key=repr,
            )
    return out


def status(url: str, run_id: str) -> str:
    from pipeline.runs import get_run

    return get_run(Warehouse(url), run_id)["status"]


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.synth import write_delivery

    root = tmp_path_factory.mktemp("analysis_landing")
    write_delivery(root / "delivery-001", patients=220, seed=8)
    return root


KILLED = """
import sys
from pipeline import stages
from pipeline.analysis_params import parse_request
from pipeline.config import Settings
settings = Settings(warehouse_url=sys.argv[1], demo=True)
request = parse_request({conf!r})
stages.begin_analysis(settings, sys.argv[2], request)
stages.analyse_derive(settings, sys.argv[2], request)
print("derived", flush=True)
# Hang in the middle of the model step's write transaction (after three of its tables),
# so the parent's SIGKILL lands mid-write every time, however fast the fit is.
import time
from pipeline.warehouse import Warehouse
write = Warehouse.replace_run_rows
written = []
def hang_after_three(self, *args, **kwargs):
    rows = write(self, *args, **kwargs)
    written.append(rows)
    if len(written) == 3:
        print("writing", flush=True)
        time.sleep(600)
    return rows
Warehouse.replace_run_rows = hang_after_three
stages.analyse_model(settings, sys.argv[2], request)
print("modelled", flush=True)
"""


def test_killed_task_is_retried_with_nothing_duplicated(landing, tmp_path):
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    load_core(url, landing)
    settings = Settings(warehouse_url=url, demo=True)
    request = parse_request(REQUEST_A)
    stages.analyse(settings, "a-clean", request)
    clean = run_rows(url, "a-clean")
    assert clean["results__km_curves"] and clean["analysis__episodes"]

    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED.format(conf=REQUEST_A), url, "a-killed"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "derived"
        assert proc.stdout.readline().strip() == "writing"  # mid-transaction in analyse_model
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert status(url, "a-killed") == "running"  # the kill left the run unfinished

    stages.analyse_model(settings, "a-killed", request)  # Airflow's retry of the task
    assert status(url, "a-killed") == "success"
    assert run_rows(url, "a-killed") == clean

    # clearing any task (or all of them) again changes nothing
    for task in (
        lambda: stages.begin_analysis(settings, "a-killed", request),
        lambda: stages.analyse_derive(settings, "a-killed", request),
        lambda: stages.analyse_model(settings, "a-killed", request),
    ):
        task()
        assert run_rows(url, "a-killed") == clean
    assert status(url, "a-killed") == "success"


def _analyse(url: str, run_id: str, conf: dict) -> None:
    stages.analyse(Settings(warehouse_url=url, demo=True), run_id, parse_request(conf))


def test_concurrent_analyses_match_sequential(landing, pg_server):
    from tests.conftest import make_pg_database

    sequential_url, drop_sequential = make_pg_database(pg_server)
    concurrent_url, drop_concurrent = make_pg_database(pg_server)
    try:
        load_core(sequential_url, landing)
        load_core(concurrent_url, landing)
        core_before = run_rows_core(concurrent_url)
        _analyse(sequential_url, "a-one", REQUEST_A)
        _analyse(sequential_url, "a-two", REQUEST_B)

        context = multiprocessing.get_context("spawn")
        workers = [
            context.Process(target=_analyse, args=(concurrent_url, "a-one", REQUEST_A)),
            context.Process(target=_analyse, args=(concurrent_url, "a-two", REQUEST_B)),
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=180)
            assert worker.exitcode == 0
        for run_id in ("a-one", "a-two"):
            assert status(concurrent_url, run_id) == "success"
            assert run_rows(concurrent_url, run_id) == run_rows(sequential_url, run_id)
        assert run_rows(concurrent_url, "a-one") != run_rows(concurrent_url, "a-two")
        assert run_rows_core(concurrent_url) == core_before  # analyses never touch core
    finally:
        drop_sequential()
        drop_concurrent()


def run_rows_core(url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    wh = Warehouse(url)
    with wh.engine.connect() as conn:
        return {
            name: conn.execute(select(func.count()).select_from(wh.table("core", name))).scalar()
            for name in ("patients", "treatments", "pain_assessments", "adverse_events")
        }


def test_injection_text_never_reaches_sql_and_status_shows_runs(landing, tmp_path, capsys):
    """A request built around the schema (as a buggy caller could) still only filters values."""
    import argparse
    import dataclasses

    from pipeline.analysis_params import CohortFilter
    from pipeline.cli_status import add_commands
    from pipeline.errors import NoResultsError

    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    load_core(url, landing)
    before = run_rows_core(url)
    evil = "x'); DROP TABLE core__patients; --"
    request = dataclasses.replace(
        parse_request({}), cohort=CohortFilter(conditions=(evil,), sites=(evil,))
    )
    settings = Settings(warehouse_url=url, demo=True)
    with pytest.raises(NoResultsError):
        stages.analyse(settings, "a-evil", request)
    assert run_rows_core(url) == before
    assert status(url, "a-evil") == "failed"

    parser = argparse.ArgumentParser()
    handlers = add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["status", "--warehouse", url])
    assert handlers["status"](args) == 0
    out = capsys.readouterr().out
    assert "a-evil" in out and "failed" in out and "no responder episodes" in out
    assert "ingest:" in out and "validate" in out
