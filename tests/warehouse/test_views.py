"""Researcher views: only the latest successful run, small cells suppressed; example queries run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from pipeline import migrate, stages
from pipeline.config import Settings
from pipeline.warehouse import Warehouse
from tests.conftest import RESEARCHER_VIEWS

EXAMPLES = sorted((migrate.SQL_DIR / "examples").glob("*.sql"))


def query(wh: Warehouse, sql: str) -> pd.DataFrame:
    with wh.engine.connect() as conn:
        return pd.read_sql(text(migrate.for_dialect(sql, wh.dialect)), conn)


def view(wh: Warehouse, name: str, order: str) -> pd.DataFrame:
    return query(wh, f"SELECT * FROM results.{name} ORDER BY {order}")


def insert(wh: Warehouse, layer: str, name: str, rows: list[dict]) -> None:
    with wh.begin() as conn:
        conn.execute(wh.table(layer, name).insert(), rows)


def flags(frame: pd.DataFrame, column: str) -> list[bool]:
    return [bool(v) for v in frame[f"{column}_suppressed"]]


def values(frame: pd.DataFrame, column: str) -> list[float | None]:
    return [None if pd.isna(v) else v for v in frame[column]]


@pytest.fixture
def crafted(warehouse_url: str) -> Warehouse:
    """Three runs: the successful one (with small cells), a newer failed one, a running one."""
    migrate.upgrade(warehouse_url)
    wh = Warehouse(warehouse_url)
    insert(
        wh,
        "results",
        "model_runs",
        [
            {"run_id": "good", "status": "success", "finished_at": datetime(2025, 1, 2)},
            {"run_id": "older", "status": "success", "finished_at": datetime(2025, 1, 1)},
            {"run_id": "failed", "status": "failed", "finished_at": datetime(2025, 1, 3)},
            {"run_id": "running", "status": "running", "finished_at": None},
        ],
    )
    for run_id in ("older", "failed", "running"):
        insert(wh, "results", "cox", [{"run_id": run_id, "model": "main", "term": "x", "hr": 9.0}])
    insert(
        wh,
        "results",
        "cox",
        [{"run_id": "good", "model": "main", "term": "x", "hr": 1.5, "n": 100, "events": 95}],
    )
    summary = [("all", "all", 100, 95), ("route", "IV", 60, 30), ("route", "IM", 35, 20)]
    summary.append(("route", "IN", 5, 3))
    insert(
        wh,
        "results",
        "survival_summary",
        [
            {"run_id": "good", "grouping": g, "group_value": v, "n": n, "events": e, "median": 9.0}
            for g, v, n, e in summary
        ],
    )
    attrition = [(1, 100, 0), (2, 100, 0), (3, 95, 5), (4, 60, 35), (5, 50, 10)]
    insert(
        wh,
        "results",
        "attrition",
        [
            {"run_id": "good", "step": s, "description": f"step {s}", "remaining": r, "excluded": x}
            for s, r, x in attrition
        ],
    )
    insert(
        wh,
        "results",
        "response_rates",
        [
            {
                "run_id": "good",
                "grouping": "all",
                "group_value": "all",
                "episodes": 100,
                "with_baseline": 100,
                "responders": 95,
                "response_rate": 0.95,
            }
        ],
    )
    insert(
        wh,
        "results",
        "adverse_event_rates",
        [
            {"run_id": "good", "route": "IV", "dose_band": "<0.25", "event": "nausea"}
            | {"administrations": 50, "with_event": 3, "rate": 0.06},
            {"run_id": "good", "route": "IV", "dose_band": "0.25-0.5", "event": "nausea"}
            | {"administrations": 8, "with_event": 0, "rate": 0.0},
            {"run_id": "good", "route": "IM", "dose_band": "<0.25", "event": "nausea"}
            | {"administrations": 40, "with_event": 20, "rate": 0.5},
        ],
    )
    insert(
        wh,
        "results",
        "km_curves",
        [
            {"run_id": "good", "grouping": "all", "group_value": "all", "time": float(t)}
            | {"survival": s, "at_risk": a, "events": e, "censored": 0}
            for t, s, a, e in ((0, 1.0, 100, 0), (1, 0.5, 50, 50), (2, 0.45, 5, 1))
        ],
    )
    insert(
        wh,
        "dq",
        "validation_results",
        [
            {"run_id": "good", "delivery_id": "d1", "source_table": "patients"}
            | {"rule_id": r, "rows_checked": 400, "rows_failed": f, "success": f == 0}
            for r, f in (("a", 0), ("b", 3), ("c", 40))
        ],
    )
    return wh


def test_views_show_only_the_latest_successful_run(crafted):
    assert view(crafted, "v_latest_run", "run_id").run_id.tolist() == ["good"]
    cox = view(crafted, "v_latest_cox", "term")
    assert cox.run_id.tolist() == ["good"] and cox.hr.tolist() == [1.5]
    # events hidden: n - events = 5 censored episodes could be recovered otherwise
    assert values(cox, "events") == [None] and flags(cox, "events") == [True]


def test_survival_summary_suppresses_small_and_complementary_cells(crafted):
    s = view(crafted, "v_latest_survival_summary", "grouping, group_value")
    assert s.group_value.tolist() == ["all", "IM", "IN", "IV"]
    assert values(s, "n") == [100, None, None, 60]  # IN small, IM its complement
    assert flags(s, "n") == [False, True, True, False]
    # all: n - events = 5; IN: 3 events; IM: complement of IN within 'route'
    assert values(s, "events") == [None, None, None, 30]


def test_attrition_hides_small_steps_and_what_would_reveal_them(crafted):
    a = view(crafted, "v_latest_attrition", "step")
    assert values(a, "remaining") == [100, 100, None, None, None]
    assert values(a, "excluded") == [0, 0, None, None, None]
    assert flags(a, "excluded") == [False, False, True, True, True]


def test_rates_are_hidden_with_their_counts(crafted):
    r = view(crafted, "v_latest_response_rates", "group_value")
    assert values(r, "responders") == [None] and values(r, "response_rate") == [None]
    assert values(r, "episodes") == [100] and values(r, "with_baseline") == [100]
    e = view(crafted, "v_latest_adverse_event_rates", "route, dose_band")
    assert values(e, "administrations") == [40, None, 50]
    assert values(e, "with_event") == [20, None, None]
    assert values(e, "rate") == [0.5, None, None]
    km = view(crafted, "v_latest_km_curves", "time")
    assert values(km, "at_risk") == [100, 50, None] and values(km, "events") == [0, 50, None]
    dq = view(crafted, "v_latest_dq_summary", "rule_id")
    assert values(dq, "rows_failed") == [0, None, 40]
    assert [bool(v) for v in dq.success] == [True, False, False]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def filled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, small_delivery: Path
) -> Iterator[tuple[Warehouse, str]]:
    """One real run per engine, shared by the example-query tests."""
    from tests.conftest import make_pg_database

    tmp = tmp_path_factory.mktemp("views")
    drop = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'warehouse.db'}"
    else:
        url, drop = make_pg_database(request.getfixturevalue("pg_server"))
    try:
        settings = Settings(warehouse_url=url, report_dir=tmp / "reports", demo=True)
        run = stages.run_all(settings, small_delivery.parent)
        wh = Warehouse(url)
        yield wh, run.run_id
        wh.engine.dispose()
    finally:
        if drop:
            drop()


def test_every_view_shows_the_real_run(filled):
    wh, run_id = filled
    for name in RESEARCHER_VIEWS:
        frame = query(wh, f"SELECT run_id FROM results.{name}")
        assert len(frame) > 0 and set(frame.run_id) == {run_id}, name


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_queries_run(filled, example):
    wh, _ = filled
    result = query(wh, example.read_text(encoding="utf-8"))
    if example.stem != "latest_dq_failures":  # a clean synthetic delivery fails no rule
        assert len(result) > 0, example.name


def test_there_are_four_to_six_examples():
    assert 4 <= len(EXAMPLES) <= 6
