"""Promotion in SQL (promotion.promote) gives exactly the core rows the pandas path gave.

The pandas path (typing_rules.to_core_types + typing_rules.natural_key + insert_frame) was
how clean rows reached core before promotion moved into SQL; it stays as the reference.
"""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.promotion import promote
from pipeline.schema import CORE_COLUMNS, NATURAL_KEYS, SOURCE_ROW
from pipeline.typing_rules import natural_key, to_core_types
from pipeline.warehouse import Warehouse

D = "d-one"

STAGED = {
    "patients": [
        {"patient_key": "k1", "sex": " F", "birth_year": "1970", "primary_condition": "CRPS",
         "comorbidities": "F41.1;I10", "site_id": "S01 "},
        {"patient_key": "k2", "sex": "M", "birth_year": " 1985 ", "primary_condition": None,
         "comorbidities": None, "site_id": "S02"},
    ],
    "treatments": [
        {"treatment_id": "T1", "patient_key": "k1", "administered_at": "2024-03-01T10:00:00",
         "duration_min": "40", "route": "IV", "dose_mg": "35.5", "weight_kg": "70"},
        {"treatment_id": "T2", "patient_key": "k1", "administered_at": "2024-03-08T10:00:00+02:00",
         "duration_min": None, "route": "IM", "dose_mg": "1e2", "weight_kg": "70.25"},
        {"treatment_id": " T3", "patient_key": "k2", "administered_at": "2024-03-09 23:30:15Z",
         "duration_min": "15.5", "route": "IN", "dose_mg": "50", "weight_kg": "80"},
        {"treatment_id": "T4", "patient_key": "k2", "administered_at": "2024-03-10T01:02:03.250-0130",
         "duration_min": "5", "route": "PO", "dose_mg": "70", "weight_kg": "80"},
        {"treatment_id": "T5", "patient_key": "k2", "administered_at": "2024-03-11",
         "duration_min": "5", "route": "SC", "dose_mg": "20", "weight_kg": "80"},
    ],
    "pain_assessments": [
        {"assessment_id": "A1", "patient_key": "k1", "assessed_at": "2024-03-01T09:00", "pain_score": "7"},
        {"assessment_id": "A2", "patient_key": "k1", "assessed_at": "2024-03-02T09:00:00.5+01:00", "pain_score": "0"},
        {"assessment_id": "A3", "patient_key": "k2", "assessed_at": "2024-12-31T23:59:59-05:00", "pain_score": "10"},
    ],
    "adverse_events": [
        {"treatment_id": "T1", "patient_key": "k1", "recorded_at": "2024-03-01T11:00:00+01:00",
         "event": "nausea ", "severity": "mild"},
        {"treatment_id": "T2", "patient_key": "k1", "recorded_at": "2024-03-08T12:00:00Z",
         "event": "dizziness", "severity": None},
    ],
}  # fmt: skip


def stage(wh: Warehouse, table: str, rows: list[dict], delivery: str) -> None:
    frame = pd.DataFrame(rows)
    frame.insert(0, SOURCE_ROW, range(1, len(frame) + 1))
    with wh.begin() as conn:
        wh.insert_frame(conn, wh.table("staging", table), frame.assign(delivery_id=delivery))


def pandas_path(wh: Warehouse, table: str, rows: list[dict]) -> None:
    """The former promotion: type in pandas, key, bulk-insert."""
    frame = pd.DataFrame(rows)
    frame.insert(0, SOURCE_ROW, range(1, len(frame) + 1))
    typed = to_core_types(table, frame).assign(delivery_id=D)
    typed = typed.assign(natural_key=natural_key(typed, list(NATURAL_KEYS[table])))
    columns = [*CORE_COLUMNS[table], "natural_key", "delivery_id", SOURCE_ROW]
    with wh.begin() as conn:
        wh.insert_frame(conn, wh.table("core", table), typed[columns])


def core_rows(wh: Warehouse, table: str) -> pd.DataFrame:
    return wh.read("core", table).sort_values(SOURCE_ROW).reset_index(drop=True)


@pytest.mark.parametrize("table", list(STAGED))
def test_sql_promotion_reads_back_like_the_pandas_path(warehouse_url, table):
    wh = Warehouse(warehouse_url)
    wh.create_schema()
    pandas_path(wh, table, STAGED[table])
    expected = core_rows(wh, table)
    with wh.begin() as conn:
        conn.execute(wh.table("core", table).delete())
    stage(wh, table, STAGED[table], D)
    with wh.begin() as conn:
        promote(wh, conn, table, D)
    pd.testing.assert_frame_equal(core_rows(wh, table), expected)


def test_promotion_skips_quarantined_rows_and_replaces_by_natural_key(warehouse_url):
    wh = Warehouse(warehouse_url)
    wh.create_schema()
    stage(wh, "pain_assessments", STAGED["pain_assessments"], D)
    with wh.begin() as conn:
        promote(wh, conn, "pain_assessments", D)
    corrected = [dict(STAGED["pain_assessments"][1], pain_score="3"), {
        "assessment_id": "A9", "patient_key": "k2", "assessed_at": "2024-05-01", "pain_score": "x"}]  # fmt: skip
    stage(wh, "pain_assessments", corrected, "d-two")
    quarantine = wh.table("quarantine", "rows")
    with wh.begin() as conn:
        conn.execute(
            quarantine.insert().values(
                delivery_id="d-two", source_table="pain_assessments", source_row=2,
                rule_id="pain_assessments.pain_score.is_number", message="m",
            )
        )  # fmt: skip
        promote(wh, conn, "pain_assessments", "d-two")
    core = wh.read("core", "pain_assessments").set_index("assessment_id")
    assert sorted(core.index) == ["A1", "A2", "A3"]
    assert core.loc["A2", "pain_score"] == 3 and core.loc["A2", "delivery_id"] == "d-two"
    assert core.loc["A1", "delivery_id"] == D


def test_a_delivery_whose_staging_rows_were_lost_goes_back_to_ingest(warehouse_url, tmp_path):
    """Staging is UNLOGGED on PostgreSQL: a crash empties it. Never promote half a delivery."""
    from pipeline.ingest import ingest
    from pipeline.synth import write_delivery
    from pipeline.validate import StagingLost, validate

    wh = Warehouse(warehouse_url)
    wh.create_schema()
    folder = write_delivery(tmp_path / "d", patients=20, seed=3)
    (loaded,) = ingest(wh, folder, "key")
    with wh.begin() as conn:  # what a crash does to an unlogged table
        conn.execute(wh.table("staging", "pain_assessments").delete())
    with pytest.raises(StagingLost, match="run `relief ingest` again"):
        validate(wh, "run-1")
    assert wh.read("core", "patients").empty
    (reloaded,) = ingest(wh, folder, "key")
    assert (reloaded.delivery_id, reloaded.status) == (loaded.delivery_id, "loaded")
    (result,) = validate(wh, "run-2")
    assert sum(result.promoted.values()) + sum(result.quarantined.values()) == loaded.rows


def test_a_delivery_short_of_staging_rows_promotes_nothing(warehouse_url, tmp_path):
    """Rows in (ingest's count) must equal promoted (the INSERT's count) + quarantined:
    a staging table short of rows rolls the promotion back and the delivery goes back
    to ingest. (The check compares the database's own row count with the manifest's.)"""
    from pipeline.ingest import ingest
    from pipeline.synth import write_delivery
    from pipeline.validate import StagingLost, validate

    wh = Warehouse(warehouse_url)
    wh.create_schema()
    folder = write_delivery(tmp_path / "d", patients=20, seed=3)
    (loaded,) = ingest(wh, folder, "key")
    staged = wh.table("staging", "pain_assessments")
    with wh.begin() as conn:
        conn.execute(staged.delete().where(staged.c.source_row <= 3))
    with pytest.raises(StagingLost, match="pain_assessments rows loaded"):
        validate(wh, "run-1")
    assert wh.read("core", "patients").empty and wh.read("core", "pain_assessments").empty
    manifest = wh.read("staging", "deliveries")
    assert manifest.set_index("delivery_id").loc[loaded.delivery_id, "status"] == "failed"
