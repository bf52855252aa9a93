"""Arrow streams into the warehouse: binary COPY on PostgreSQL, executemany on SQLite.

Values must come back exactly as sent: NULL and the empty string stay distinct, non-ASCII
text, values longer than any buffer (1 MB), and batches whose columns are fixed-width in
one batch and variable in the next (the encoder lays those out differently).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sqlalchemy import BigInteger, Column, Integer, MetaData, SmallInteger, String, Table, Text

from pipeline.warehouse import Warehouse

LONG = "ü" * 500_000  # 1 MB of UTF-8

FIRST = pa.record_batch(
    {
        "delivery_id": pa.DictionaryArray.from_arrays(np.zeros(3, np.int32), pa.array(["d1"])),
        "n": pa.array([1, 2, 3], pa.int64()),
        "key": pa.array(["k" * 64, "j" * 64, "h" * 64]),  # fixed width in this batch
        "note": pa.array(["", None, "naïve café ☕ 漢字"]),
        "big": pa.array([2**40, -1, None], pa.int64()),
        "small": pa.array([None, -5, 32767], pa.int16()),
    }
)
SECOND = pa.record_batch(
    {
        "delivery_id": pa.DictionaryArray.from_arrays(np.zeros(3, np.int32), pa.array(["d1"])),
        "n": pa.array([4, 5, 6], pa.int64()),
        "key": pa.array([None, "short", ""]),  # variable width, a NULL and an empty string
        "note": pa.array([LONG, 'tab\there\nnewline, "quoted" \\ back', "x"]),
        "big": pa.array([0, 1, 2], pa.int64()),
        "small": pa.array([0, 1, 2], pa.int16()),
    }
)


def _table() -> Table:
    return Table(
        "copy_roundtrip",
        MetaData(),
        Column("delivery_id", String(64), nullable=False),
        Column("n", Integer, nullable=False),
        Column("key", String(64)),
        Column("note", Text),
        Column("big", BigInteger),
        Column("small", SmallInteger),
        Column("not_sent", Text),
    )


def _reader(*batches: pa.RecordBatch) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(batches[0].schema, iter(batches))


def test_arrow_stream_round_trips_exactly(warehouse_url):
    wh = Warehouse(warehouse_url)
    table = _table()
    table.create(wh.engine)
    with wh.begin() as conn:
        assert wh.insert_frame(conn, table, _reader(FIRST, SECOND)) == 6
    with wh.engine.connect() as conn:
        rows = conn.execute(table.select().order_by(table.c.n)).mappings().all()
    expected = pa.Table.from_batches([FIRST, SECOND]).to_pylist()
    for row, want in zip(rows, expected, strict=True):
        assert {k: row[k] for k in want} == want
        assert row["not_sent"] is None
    assert rows[0]["note"] == "" and rows[1]["note"] is None  # '' and NULL stay distinct
    assert len(rows[3]["note"]) == len(LONG)
    wh.engine.dispose()


def test_a_failure_while_streaming_rolls_back_and_names_the_problem(warehouse_url):
    wh = Warehouse(warehouse_url)
    table = _table()
    table.create(wh.engine)

    def batches():
        yield FIRST
        raise ValueError("pain_assessments.csv: bad block")

    with pytest.raises(ValueError, match="bad block"), wh.begin() as conn:
        wh.insert_frame(conn, table, pa.RecordBatchReader.from_batches(FIRST.schema, batches()))
    with wh.engine.connect() as conn:
        assert conn.execute(table.select()).all() == []
    wh.engine.dispose()


def test_an_integer_too_large_for_its_column_is_refused_not_wrapped(pg_server):
    from pipeline.copy_binary import CopyEncodeError
    from tests.conftest import make_pg_database

    url, drop = make_pg_database(pg_server)
    try:
        wh = Warehouse(url)
        table = _table()
        table.create(wh.engine)
        batch = FIRST.set_column(1, "n", pa.array([1, 2, 2**31], pa.int64()))
        with pytest.raises(CopyEncodeError, match="column n"), wh.begin() as conn:
            wh.insert_frame(conn, table, _reader(batch))
        wh.engine.dispose()
    finally:
        drop()


def test_the_server_is_not_told_the_client_error_text(pg_server, monkeypatch):
    """psycopg sends an aborted COPY's exception text to the server, which logs it; a reader
    error may quote patient data, so only a fixed message may go there."""
    import psycopg

    from tests.conftest import make_pg_database

    sent = []
    original = psycopg.Copy.finish

    def finish(self, exc):
        sent.append(str(exc))
        return original(self, exc)

    monkeypatch.setattr(psycopg.Copy, "finish", finish)
    url, drop = make_pg_database(pg_server)
    try:
        wh = Warehouse(url)
        table = _table()
        table.create(wh.engine)

        def batches():
            yield FIRST
            raise ValueError("row 7: P0000123 is not a valid value")

        reader = pa.RecordBatchReader.from_batches(FIRST.schema, batches())
        with pytest.raises(ValueError, match="P0000123"), wh.begin() as conn:
            wh.insert_frame(conn, table, reader)
        assert sent and not any("P0000123" in text for text in sent)
        wh.engine.dispose()
    finally:
        drop()
