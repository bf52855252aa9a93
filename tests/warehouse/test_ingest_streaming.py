"""Landing CSVs stream into staging block by block: same rows as a whole read, and a bad
row far into a file still fails the whole delivery with a clear message and no rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from pipeline.ingest import ingest
from pipeline.pseudonym import pseudonymise
from pipeline.sources import landing
from pipeline.warehouse import Warehouse

KEY = "test-key-0123456789abcdef"


@pytest.fixture
def small_blocks(monkeypatch):
    """A few kB per block, so a small synthetic delivery streams in many batches."""
    monkeypatch.setattr(landing, "STREAM_BLOCK_BYTES", 4096)


def _delivery(folder: Path, seed: int) -> Path:
    from pipeline.synth import write_delivery

    return write_delivery(folder, patients=60, seed=seed)


def test_streamed_rows_equal_the_file_row_for_row(warehouse_url, tmp_path, small_blocks):
    folder = _delivery(tmp_path / "landing" / "d1", seed=5)
    wh = Warehouse(warehouse_url)
    wh.create_schema()
    raw = landing.open_table("pain_assessments", folder / "pain_assessments.csv")
    assert isinstance(raw, landing.CsvStream) and len(list(raw.batches())) > 3
    (outcome,) = ingest(wh, tmp_path / "landing", KEY)
    assert outcome.status == "loaded", outcome.error
    staged = wh.read("staging", "pain_assessments").sort_values("source_row")
    expected = pd.read_csv(folder / "pain_assessments.csv", dtype=str, keep_default_na=False)
    expected = expected.replace("", None)
    assert staged.source_row.tolist() == list(range(1, len(expected) + 1))
    for column in ("assessment_id", "assessed_at", "pain_score"):
        assert staged[column].tolist() == expected[column].tolist(), column
    assert staged.patient_key.tolist() == pseudonymise(expected.patient_id, KEY).tolist()
    assert set(staged.delivery_id) == {outcome.delivery_id}
    wh.engine.dispose()


def _append(path: Path, line: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(line)


BAD_TAILS = {
    "ragged": (b"A999999,P999999,2024-01-01T00:00:00,3,extra\n", "Expected 4 columns, got 5"),
    "latin1": (b"A999999,P999999,2024-01-01T00:00:00,caf\xe9\n", "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(BAD_TAILS))
def test_bad_row_after_many_blocks_fails_the_delivery_and_keeps_nothing(
    case, warehouse_url, tmp_path, small_blocks
):
    bad = _delivery(tmp_path / "landing" / "a_bad", seed=6)
    _delivery(tmp_path / "landing" / "b_good", seed=7)
    line, message = BAD_TAILS[case]
    _append(bad / "pain_assessments.csv", line)
    wh = Warehouse(warehouse_url)
    wh.create_schema()
    failed, loaded = ingest(wh, tmp_path / "landing", KEY)
    assert (failed.status, loaded.status) == ("failed", "loaded")
    assert str(bad / "pain_assessments.csv") in failed.error and message in failed.error
    assert "P999999" not in failed.error  # no raw identifier in the message
    for name in ("patients", "treatments", "pain_assessments"):
        table = wh.table("staging", name)
        with wh.engine.connect() as conn:
            rows = conn.execute(
                select(func.count())
                .select_from(table)
                .where(table.c.delivery_id == failed.delivery_id)
            ).scalar_one()
        assert rows == 0, name
    manifest = wh.read("staging", "deliveries").set_index("delivery_id")
    assert manifest.loc[failed.delivery_id, "status"] == "failed"
    wh.engine.dispose()
