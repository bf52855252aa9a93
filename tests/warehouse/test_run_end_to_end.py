"""`relief run`'s stages end to end on SQLite and PostgreSQL, idempotent re-runs included."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from pipeline import stages
from pipeline.warehouse import Warehouse

RESULT_TABLES = (
    "km_curves",
    "survival_summary",
    "landmarks",
    "rmst",
    "logrank",
    "cox",
    "response_rates",
    "attrition",
)


def count(wh: Warehouse, layer: str, name: str, run_id: str | None = None) -> int:
    table = wh.table(layer, name)
    query = select(func.count()).select_from(table)
    if run_id is not None:
        query = query.where(table.c.run_id == run_id)
    with wh.engine.connect() as conn:
        return conn.execute(query).scalar_one()


def test_full_run_fills_every_result_table_and_lineage(warehouse_url, settings_for, small_delivery):
    settings = settings_for(warehouse_url)
    summary = stages.run_all(settings, small_delivery.parent)
    wh = Warehouse(warehouse_url)
    for name in RESULT_TABLES:
        assert count(wh, "results", name, summary.run_id) > 0, name
    run = wh.read("results", "model_runs").set_index("run_id").loc[summary.run_id]
    assert run.status == "success"
    counts = json.loads(run.row_counts)
    assert set(counts) == {"ingest", "validate", "derive", "model", "report"}
    assert set(json.loads(run.timings)) == set(counts)
    assert "pseudonym_key" not in run.parameters
    report = summary.report
    assert report.endswith("report.html")
    html = Path(report).read_text(encoding="utf-8")
    assert "Kaplan" in html and "data:image/png;base64," in html

    # No raw patient identifier in core (staging's are checked in test_sources.py), and
    # the promoted delivery's staging rows are gone (pipeline/staging.py).
    raw_ids = set(pd.read_csv(small_delivery / "patients.csv").patient_id)
    keys = set(wh.read("core", "patients").patient_key)
    assert keys and not keys & raw_ids and all(len(k) == 64 for k in keys)
    for table in ("patients", "treatments", "pain_assessments", "adverse_events"):
        assert count(wh, "staging", table) == 0, table


def test_rerun_loads_nothing_new_and_replaces_run_rows(warehouse_url, settings_for, small_delivery):
    settings = settings_for(warehouse_url)
    first = stages.run_all(settings, small_delivery.parent)
    wh = Warehouse(warehouse_url)
    staged = count(wh, "staging", "pain_assessments")
    core = count(wh, "core", "pain_assessments")
    cox_rows = count(wh, "results", "cox", first.run_id)

    again = stages.run_all(settings, small_delivery.parent, run_id=first.run_id)
    assert set(again.counts["ingest"]["deliveries"].values()) == {"skipped"}
    assert count(wh, "staging", "pain_assessments") == staged
    assert count(wh, "core", "pain_assessments") == core
    assert count(wh, "results", "cox", first.run_id) == cox_rows
    assert count(wh, "results", "model_runs") == 1


def test_sqlite_and_postgresql_give_the_same_results(
    pg_server, tmp_path, settings_for, small_delivery
):
    from tests.conftest import make_pg_database

    pg_url, drop = make_pg_database(pg_server)
    try:
        results = {}
        for url in (f"sqlite:///{tmp_path / 'w.db'}", pg_url):
            run = stages.run_all(settings_for(url), small_delivery.parent)
            wh = Warehouse(url)
            cox = wh.table("results", "cox")
            summary = wh.table("results", "survival_summary")
            results[url] = (
                wh.read("results", "cox", cox.c.run_id == run.run_id).drop(columns="run_id"),
                wh.read("results", "survival_summary", summary.c.run_id == run.run_id)
                .drop(columns="run_id")
                .sort_values(["grouping", "group_value"])
                .reset_index(drop=True),
            )
            wh.engine.dispose()
        (cox_a, sum_a), (cox_b, sum_b) = results.values()
        pd.testing.assert_frame_equal(cox_a, cox_b, check_exact=False, rtol=1e-9)
        pd.testing.assert_frame_equal(sum_a, sum_b, check_exact=False, rtol=1e-9)
    finally:
        drop()


@pytest.mark.parametrize("fmt", ["parquet"])
def test_parquet_delivery_gives_the_same_core_rows(tmp_path, settings_for, fmt):
    from pipeline.synth import write_delivery

    url_csv, url_pq = (f"sqlite:///{tmp_path / n}" for n in ("csv.db", "pq.db"))
    stages.run_all(
        settings_for(url_csv), write_delivery(tmp_path / "csv" / "d1", patients=60, seed=5)
    )
    stages.run_all(
        settings_for(url_pq), write_delivery(tmp_path / "pq" / "d1", patients=60, seed=5, fmt=fmt)
    )
    a = Warehouse(url_csv).read("core", "treatments").drop(columns="delivery_id")
    b = Warehouse(url_pq).read("core", "treatments").drop(columns="delivery_id")
    pd.testing.assert_frame_equal(
        a.sort_values("treatment_id").reset_index(drop=True),
        b.sort_values("treatment_id").reset_index(drop=True),
    )
