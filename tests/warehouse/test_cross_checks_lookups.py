"""Cross-table rules look up only the delivery's keys in core, with the same results.

Issue 8: the rules used to scan every core table (``NOT IN (SELECT ... FROM core)``, a
window over every patient's treatments) and promotion's replace step hash-joined all of
core. Now core is reached through the delivery's keys; these cases pin the results on
both engines, with core rows whose natural keys are written as promotion writes them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text

from pipeline.promotion import promote
from pipeline.warehouse import Warehouse
from tests.unit.test_cross_checks import core, patient, run, stage, treatment


def test_rules_against_core_match_the_whole_table_semantics(warehouse_url):
    wh = Warehouse(warehouse_url)
    wh.create_schema()
    core(wh, "patients", [{"patient_key": k} for k in ("p-core", "p-other", None)])
    core(wh, "treatments", [
        {"treatment_id": "t-core", "patient_key": "p-core", "administered_at": datetime(2024, 1, 1, 9), "duration_min": 120.0},  # noqa: E501
        {"treatment_id": "t-mine", "patient_key": "p-core", "administered_at": datetime(2024, 2, 1, 9), "duration_min": 60.0},  # noqa: E501
        {"treatment_id": "t-other", "patient_key": "p-other", "administered_at": datetime(2024, 3, 1, 9), "duration_min": 600.0},  # noqa: E501
        {"treatment_id": None, "patient_key": "p-other", "administered_at": None},  # key "None"
    ])  # fmt: skip
    stage(wh, "patients", [patient("p1")])
    stage(wh, "treatments", [
        treatment("t1", "p-core", "2024-01-01T10:00:00"),  # inside core t-core: overlap
        treatment("t-mine", "p-core", "2024-02-01T09:30:00"),  # re-delivered: not its own
        treatment("t2", "p1", "2024-03-01T10:00:00"),  # p-other's t-other is not p1's
        treatment("t3", "nobody", "2024-04-01T10:00:00"),
        treatment("t4", "None", "2024-04-01T10:00:00"),  # a core *key* "None" is no patient
    ])  # fmt: skip
    events = [
        {
            "treatment_id": t,
            "patient_key": "p-core",
            "recorded_at": "2024-01-01T11:00:00",
            "event": "nausea",
        }  # noqa: E501
        for t in ("t1", "t-core", "t-other", "t-gone", "None")
    ]
    stage(wh, "adverse_events", events)
    counts, found, _ = run(wh)
    assert found == {
        ("treatments", 1, "treatments.administered_at.no_overlap"),
        ("adverse_events", 1, "adverse_events.treatment_id.known_treatment"),  # t1 quarantined
        ("treatments", 4, "treatments.patient_id.known_patient"),
        ("treatments", 5, "treatments.patient_id.known_patient"),
        ("adverse_events", 4, "adverse_events.treatment_id.known_treatment"),
        ("adverse_events", 5, "adverse_events.treatment_id.known_treatment"),
    }
    assert counts["treatments.administered_at.no_overlap"] == 1


def test_promotion_leaves_core_statistics_for_the_next_night(warehouse_url):
    """PostgreSQL: the first promotion into a core table ANALYZEs it, so a later delivery's
    keys are index lookups; a small promotion into an analyzed table does not re-ANALYZE."""
    wh = Warehouse(warehouse_url)
    wh.create_schema()
    if wh.dialect != "postgresql":
        return
    stage(wh, "patients", [patient(f"p{i}") for i in range(200)])
    with wh.begin() as conn:
        promote(wh, conn, "patients", "d-new")
    stats = text(
        "SELECT count(*) FROM pg_stats WHERE schemaname = 'core' AND tablename = :t"
        " AND attname = 'natural_key'"
    )
    analyzed = text("SELECT reltuples FROM pg_class WHERE oid = 'core.patients'::regclass")
    with wh.engine.connect() as conn:
        assert conn.execute(stats, {"t": "patients"}).scalar_one() == 1
        assert conn.execute(analyzed).scalar_one() == 200
    stage(wh, "patients", [patient("p-late")], delivery="d-late")
    with wh.begin() as conn:
        promote(wh, conn, "patients", "d-late")
    with wh.engine.connect() as conn:
        assert conn.execute(analyzed).scalar_one() == 200  # 1 of 200 rows: left to autovacuum
