"""Validation's bulk read of one delivery's staging rows (``Warehouse.read_text_columns``).

On PostgreSQL a large table is read as two block (``ctid``) ranges on two connections;
the threshold is lowered here so a small table takes that path too. Either way the
result must be exactly the delivery's rows with NULLs kept, however the rows of another
delivery are interleaved with them, and the two ranges must come back in the order of
one scan (validation sorts by source_row only when that order is not already sorted).
"""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline import warehouse as warehouse_module
from pipeline.warehouse import Warehouse

COLUMNS = ["source_row", "assessment_id", "patient_key", "assessed_at", "pain_score"]


def staged_rows(delivery_id: str, rows: range) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "delivery_id": delivery_id,
            "source_row": list(rows),
            "assessment_id": [f"{delivery_id}-{i}" for i in rows],
            "patient_key": [None if i % 7 == 0 else f"p{i % 50}" for i in rows],
            "assessed_at": [f"2023-01-{1 + i % 28:02d}T10:00:00" for i in rows],
            "pain_score": [str(i % 11) if i % 13 else None for i in rows],
        }
    )


def load_two_deliveries(wh: Warehouse) -> None:
    staging = wh.table("staging", "pain_assessments")
    with wh.begin() as conn:  # 'a' and 'b' interleaved, so both ranges hold some of 'a'
        for start in range(1, 6001, 1000):
            wh.insert_frame(conn, staging, staged_rows("a", range(start, start + 1000)))
            wh.insert_frame(conn, staging, staged_rows("b", range(start, start + 500)))


def test_reads_exactly_one_delivery(warehouse_url: str) -> None:
    wh = Warehouse(warehouse_url)
    wh.create_schema()
    load_two_deliveries(wh)

    frame = wh.read_text_columns("staging", "pain_assessments", COLUMNS, "a")

    frame = frame.sort_values("source_row", ignore_index=True)
    expected = staged_rows("a", range(1, 6001))[COLUMNS]
    assert frame["source_row"].tolist() == expected["source_row"].tolist()
    for column in COLUMNS[1:]:
        got = frame[column].astype(object).where(frame[column].notna(), None)
        assert got.tolist() == expected[column].tolist(), column
    wh.engine.dispose()


def test_two_block_ranges_read_what_one_scan_reads(
    pg_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import make_pg_database

    url, drop = make_pg_database(pg_server)
    try:
        wh = Warehouse(url)
        wh.create_schema()
        load_two_deliveries(wh)
        one_scan = wh.read_text_columns("staging", "pain_assessments", COLUMNS, "a")
        monkeypatch.setattr(warehouse_module, "_PARALLEL_READ_BLOCKS", 1)
        two_ranges = wh.read_text_columns("staging", "pain_assessments", COLUMNS, "a")
        wh.engine.dispose()
    finally:
        drop()
    assert len(one_scan) == 6000
    pd.testing.assert_frame_equal(two_ranges, one_scan)
