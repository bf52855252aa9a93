"""Incremental, idempotent ingest: same files twice, corrected re-delivery, killed load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from pipeline import stages
from pipeline.ingest import ingest
from pipeline.warehouse import Warehouse

KEY = "test-key-0123456789abcdef"


def count(wh: Warehouse, layer: str, name: str, where=None) -> int:
    table = wh.table(layer, name)
    query = select(func.count()).select_from(table)
    if where is not None:
        query = query.where(where(table))
    with wh.engine.connect() as conn:
        return conn.execute(query).scalar_one()


def test_same_files_twice_then_corrected_redelivery_replaces_by_natural_key(
    warehouse_url, settings_for, tmp_path
):
    from pipeline.synth import write_delivery

    settings = settings_for(warehouse_url)
    landing = tmp_path / "landing"
    first = write_delivery(landing / "d1", patients=80, seed=21)
    run = stages.begin(settings)
    stages.ingest(settings, run, landing)
    stages.validate(settings, run)
    wh = Warehouse(warehouse_url)
    staged, core = count(wh, "staging", "pain_assessments"), count(wh, "core", "pain_assessments")

    again = stages.ingest(settings, run, landing)
    assert set(again["deliveries"].values()) == {"skipped"} and again["rows"] == 0
    assert count(wh, "staging", "pain_assessments") == staged

    # A corrected re-delivery: the same assessments, one score changed.
    pain = pd.read_csv(first / "pain_assessments.csv", dtype=str)
    target = pain.assessment_id.iloc[0]
    new_score = "0" if pain.pain_score.iloc[0] != "0" else "1"
    pain.loc[0, "pain_score"] = new_score
    corrected = landing / "d2"
    corrected.mkdir()
    for name in ("patients", "treatments", "adverse_events"):
        (corrected / f"{name}.csv").write_bytes((first / f"{name}.csv").read_bytes())
    pain.to_csv(corrected / "pain_assessments.csv", index=False)
    out = stages.ingest(settings, run, landing)
    assert sorted(out["deliveries"].values()) == ["loaded", "skipped"]
    stages.validate(settings, run)
    assert count(wh, "core", "pain_assessments") == core  # replaced, not appended
    core_pain = wh.read("core", "pain_assessments")
    row = core_pain.loc[core_pain.assessment_id == target]
    assert len(row) == 1 and int(row.pain_score.iloc[0]) == int(new_score)


KILL_SCRIPT = """
import sys, time
from pathlib import Path
import pipeline.warehouse as w
from pipeline.ingest import ingest
original = w._copy_into
def slow(conn, table, frame):
    original(conn, table, frame)
    if table.name == "pain_assessments":
        print("COPIED", flush=True)
        time.sleep(60)
w._copy_into = slow
ingest(w.Warehouse(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
"""


def test_killed_load_leaves_nothing_and_next_run_finishes(pg_server, tmp_path):
    from pipeline.synth import write_delivery
    from tests.conftest import make_pg_database

    url, drop = make_pg_database(pg_server)
    try:
        landing = tmp_path / "landing"
        write_delivery(landing / "d1", patients=150, seed=4)
        wh = Warehouse(url)
        wh.create_schema()
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
        proc = subprocess.Popen(
            [sys.executable, "-c", KILL_SCRIPT, url, str(landing), KEY],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "COPIED"  # rows are in, transaction open
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(0.5)  # the server notices the dropped connection and rolls back
        manifest = wh.read("staging", "deliveries")
        assert manifest.status.tolist() == ["loading"]
        for name in ("patients", "treatments", "pain_assessments"):
            assert count(wh, "staging", name) == 0, name

        (outcome,) = ingest(wh, landing, KEY)
        assert outcome.status == "loaded"
        assert wh.read("staging", "deliveries").status.tolist() == ["loaded"]
        expected = len(pd.read_csv(landing / "d1" / "pain_assessments.csv"))
        assert count(wh, "staging", "pain_assessments") == expected
        wh.engine.dispose()
    finally:
        drop()


def test_failure_midway_rolls_back_the_delivery_and_others_still_load(
    warehouse_url, tmp_path, monkeypatch
):
    from pipeline.synth import write_delivery

    landing = tmp_path / "landing"
    write_delivery(landing / "a", patients=30, seed=1)
    write_delivery(landing / "b", patients=30, seed=2)
    wh = Warehouse(warehouse_url)
    wh.create_schema()
    original = Warehouse.insert_frame
    calls = {"n": 0}

    def flaky(self, conn, table, frame):
        calls["n"] += 1
        if calls["n"] == 2:  # the first delivery's second table
            raise RuntimeError("disk full")
        return original(self, conn, table, frame)

    monkeypatch.setattr(Warehouse, "insert_frame", flaky)
    a, b = ingest(wh, landing, KEY)
    assert (a.status, b.status) == ("failed", "loaded")
    assert "disk full" in a.error and str(landing / "a") in a.error
    assert count(wh, "staging", "patients", lambda t: t.c.delivery_id == a.delivery_id) == 0
    monkeypatch.undo()
    a2, b2 = ingest(wh, landing, KEY)
    assert (a2.status, b2.status) == ("loaded", "skipped")
    statuses = wh.read("staging", "deliveries").set_index("delivery_id").status
    assert statuses[a.delivery_id] == "loaded"


@pytest.mark.parametrize("fmt", ["parquet"])
def test_parquet_and_csv_stage_the_same_text(tmp_path, fmt):
    from pipeline.synth import write_delivery

    frames = []
    for f in ("csv", fmt):
        wh = Warehouse(f"sqlite:///{tmp_path / f}.db")
        wh.create_schema()
        ingest(wh, write_delivery(tmp_path / f / "d", patients=20, seed=9, fmt=f), KEY)
        frames.append(wh.read("staging", "patients").drop(columns=["delivery_id"]))
    pd.testing.assert_frame_equal(*frames)
