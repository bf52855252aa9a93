"""Property: random malformed rows and files never crash ingest + validate (SQLite).

Whatever hypothesis does to a small delivery (odd values in any cell, dropped or extra
columns, duplicated rows, header-only, empty or binary files), ingest and validate
either succeed or raise one of the documented user errors, and for every delivery that
loaded, each staging row is promoted, quarantined or (blocked delivery) held back:
rows in = promoted + quarantined + held, checked against the warehouse itself.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from pipeline.config import DEMO_PSEUDONYM_KEY
from pipeline.errors import user_errors
from pipeline.ingest import ingest
from pipeline.schema import LANDING_REQUIRED
from pipeline.synth import write_delivery
from pipeline.validate import validate_delivery
from pipeline.warehouse import Warehouse

TABLES = tuple(LANDING_REQUIRED)
NASTY = st.one_of(
    st.sampled_from(
        ["", " ", "NaN", "nan", "None", "-0", "1e309", "-1", "10.5", "99999999999999999999",
         "2024-02-30", "2024-13-01T00:00:00", "1899-12-31", "2999-01-01T00:00:00Z",
         "2024-01-01T10:00:00+25:00", "24:00", "IV ", "iv", "P000001", "T0000001", "A00000001",
         "１２", "ß", "a,b", 'quote"d', "line\nbreak", "\t", "0x10", "∞", "0.0000001"]
    ),
    st.text(max_size=12),
)  # fmt: skip


@pytest.fixture(scope="module")
def base_delivery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_delivery(tmp_path_factory.mktemp("base") / "d1", patients=6, seed=3)


cell = st.tuples(
    st.just("cell"), st.sampled_from(TABLES), st.integers(0, 40), st.integers(0, 8), NASTY
)
mutation = st.one_of(  # cell edits three times as often: they reach validation
    cell,
    cell,
    cell,
    st.tuples(st.just("drop_column"), st.sampled_from(TABLES), st.integers(0, 8)),
    st.tuples(st.just("extra_column"), st.sampled_from(TABLES), NASTY),
    st.tuples(st.just("duplicate_rows"), st.sampled_from(TABLES), st.integers(0, 40)),
    st.tuples(st.just("header_only"), st.sampled_from(TABLES)),
    st.tuples(st.just("raw_bytes"), st.sampled_from(TABLES), st.binary(max_size=64)),
)  # fmt: skip


def _mutate(folder: Path, change: tuple) -> None:
    kind, table = change[0], change[1]
    path = folder / f"{table}.csv"
    if kind == "raw_bytes":
        path.write_bytes(change[2])
        return
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError):
        return  # an earlier change already made the file unreadable
    if kind == "cell" and len(frame):
        row, col = change[2] % len(frame), change[3] % len(frame.columns)
        frame.iloc[row, col] = change[4]
    elif kind == "drop_column":
        frame = frame.drop(columns=frame.columns[change[2] % len(frame.columns)])
    elif kind == "extra_column":
        frame["clinician_note"] = change[2]
    elif kind == "duplicate_rows" and len(frame):
        frame = pd.concat([frame, frame.iloc[[change[2] % len(frame)]]], ignore_index=True)
    elif kind == "header_only":
        frame = frame.iloc[0:0]
    frame.to_csv(path, index=False)


def _count(wh: Warehouse, layer: str, table: str, delivery_id: str) -> int:
    t = wh.table(layer, table)
    with wh.engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(t).where(t.c.delivery_id == delivery_id)
        ).scalar_one()


def _quarantined(wh: Warehouse, table: str, delivery_id: str) -> int:
    q = wh.table("quarantine", "rows")
    with wh.engine.connect() as conn:
        return conn.execute(
            select(func.count(func.distinct(q.c.source_row))).where(
                q.c.delivery_id == delivery_id, q.c.source_table == table
            )
        ).scalar_one()


@settings(
    max_examples=int(os.environ.get("RELIEF_PROPERTY_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(changes=st.lists(mutation, min_size=1, max_size=4))
def test_malformed_deliveries_never_crash_and_every_row_is_accounted_for(base_delivery, changes):
    work = Path(tempfile.mkdtemp(prefix="relief-prop-"))
    try:
        folder = work / "landing" / "d1"
        shutil.copytree(base_delivery, folder)
        for change in changes:
            _mutate(folder, change)
        wh = Warehouse(f"sqlite:///{work / 'w.db'}")
        wh.create_schema()
        try:
            outcomes = ingest(wh, folder.parent, DEMO_PSEUDONYM_KEY)
        except user_errors():
            return
        for outcome in outcomes:
            if outcome.status != "loaded":
                assert outcome.error, outcome  # a failed delivery says why
                continue
            staged = {t: _count(wh, "staging", t, outcome.delivery_id) for t in TABLES}
            try:
                result = validate_delivery(wh, "run-prop", outcome.delivery_id)
            except user_errors():
                continue
            for table in TABLES:
                rows_in = staged[table]
                # Promotion empties the delivery's staging rows; a blocked one keeps them.
                kept = rows_in if result.blocking else 0
                assert _count(wh, "staging", table, outcome.delivery_id) == kept, table
                promoted = _count(wh, "core", table, outcome.delivery_id)
                quarantined = _quarantined(wh, table, outcome.delivery_id)
                held = result.held.get(table, 0)
                assert rows_in == promoted + quarantined + held, (table, changes)
                assert result.rows_in[table] == rows_in
                assert result.promoted[table] == promoted
                assert result.quarantined[table] == quarantined
        wh.engine.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)
