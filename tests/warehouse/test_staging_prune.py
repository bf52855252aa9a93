"""Promotion empties the delivery's staging rows and nothing else (pipeline/staging.py).

Staging has no delivery_id index (migration 0006) because it only ever holds deliveries
not yet in core: these tests pin that down on both engines, including PostgreSQL's
TRUNCATE shortcut, which must neither take another delivery's rows nor wait for a
connection that holds staging.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import create_engine, func, select, text

from pipeline.ingest import ingest
from pipeline.schema import LANDING_TABLES
from pipeline.staging import STAGED_WITH_ROWS
from pipeline.validate import validate_delivery
from pipeline.warehouse import Warehouse

KEY = "test-key-0123456789abcdef"


def staged(wh: Warehouse, delivery_id: str) -> dict[str, int]:
    """Rows per staging table, ``row_failures`` (what the row checks found) included."""
    counts = {}
    with wh.engine.connect() as conn:
        for name in STAGED_WITH_ROWS:
            t = wh.table("staging", name)
            counts[name] = conn.execute(
                select(func.count()).select_from(t).where(t.c.delivery_id == delivery_id)
            ).scalar_one()
    return counts


def two_deliveries(wh: Warehouse, tmp_path, bad_scores: int = 0):
    from pipeline.synth import write_delivery

    landing = tmp_path / "landing"
    write_delivery(landing / "a", patients=40, seed=1)
    write_delivery(landing / "b", patients=40, seed=2, id_prefix="B")
    if bad_scores:  # out of range: quarantined by the GX suite
        path = landing / "a" / "pain_assessments.csv"
        frame = pd.read_csv(path, dtype=str)
        frame.loc[: bad_scores - 1, "pain_score"] = "99"
        frame.to_csv(path, index=False)
    wh.create_schema()
    a, b = ingest(wh, landing, KEY)
    assert (a.status, b.status) == ("loaded", "loaded")
    return a.delivery_id, b.delivery_id


def test_promotion_removes_only_its_own_staging_rows(warehouse_url, tmp_path):
    wh = Warehouse(warehouse_url)
    a, b = two_deliveries(wh, tmp_path)
    b_rows = staged(wh, b)
    assert all(b_rows[t] for t in LANDING_TABLES)

    first = validate_delivery(wh, "run-1", a)
    assert not first.blocking and sum(first.promoted.values()) > 0
    assert set(staged(wh, a).values()) == {0}
    assert staged(wh, b) == b_rows  # another loaded delivery keeps its rows

    validate_delivery(wh, "run-1", b)
    assert set(staged(wh, b).values()) == {0}
    status = wh.read("staging", "deliveries").set_index("delivery_id").status
    assert status[a] == status[b] == "promoted"
    wh.engine.dispose()


def test_a_blocked_delivery_keeps_its_staging_rows(warehouse_url, tmp_path):
    wh = Warehouse(warehouse_url)
    a, b = two_deliveries(wh, tmp_path, bad_scores=20)
    a_rows = staged(wh, a)
    assert a_rows["row_failures"] == 20  # the out-of-range scores, found at ingest
    blocked = validate_delivery(wh, "run-1", a, blocking_share=0.0)
    assert blocked.blocking
    validate_delivery(wh, "run-1", b)  # PostgreSQL: may not truncate a blocked delivery away
    assert staged(wh, a) == a_rows
    assert set(staged(wh, b).values()) == {0}
    wh.engine.dispose()


def test_postgres_prune_does_not_wait_for_a_reader_of_staging(tmp_path, pg_server):
    from tests.conftest import make_pg_database

    url, drop = make_pg_database(pg_server)
    try:
        wh = Warehouse(url)
        a, b = two_deliveries(wh, tmp_path)
        validate_delivery(wh, "run-1", b)  # leaves a as the only delivery in staging
        reader = create_engine(url).connect()  # its transaction begins with the SELECT
        reader.execute(text("SELECT count(*) FROM staging.patients"))  # holds ACCESS SHARE
        validate_delivery(wh, "run-1", a)  # TRUNCATE would wait for the reader: DELETE instead
        reader.rollback()
        reader.close()
        assert set(staged(wh, a).values()) == set(staged(wh, b).values()) == {0}
        assert set(wh.read("core", "patients").delivery_id) == {a, b}
        wh.engine.dispose()
    finally:
        drop()
