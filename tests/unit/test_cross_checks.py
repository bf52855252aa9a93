"""Cross-table rules (pipeline.cross_checks) as SQL on tiny SQLite warehouses."""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
import pytest

from pipeline import cross_checks
from pipeline.schema import NATURAL_KEYS
from pipeline.typing_rules import natural_key
from pipeline.warehouse import Warehouse

D = "d-new"


@pytest.fixture
def wh(tmp_path) -> Warehouse:
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    warehouse.create_schema()
    return warehouse


def stage(wh: Warehouse, table: str, rows: list[dict], delivery: str = D) -> None:
    frame = pd.DataFrame(rows)
    frame.insert(0, "source_row", range(1, len(frame) + 1))
    frame = frame.assign(delivery_id=delivery)
    with wh.begin() as conn:
        wh.insert_frame(conn, wh.table("staging", table), frame)


def core(wh: Warehouse, table: str, rows: list[dict]) -> None:
    """Core rows as promotion writes them: natural_key from the table's key columns."""
    frame = pd.DataFrame(rows)
    keys = frame.reindex(columns=list(NATURAL_KEYS[table]))
    frame = frame.assign(
        natural_key=natural_key(keys, list(NATURAL_KEYS[table])), delivery_id="d-old", source_row=1
    )
    with wh.begin() as conn:
        wh.insert_frame(conn, wh.table("core", table), frame)


def quarantine(wh: Warehouse, table: str, source_row: int, rule: str = "x.y.z") -> None:
    row = {"delivery_id": D, "source_table": table, "source_row": source_row}
    with wh.begin() as conn:
        wh.insert_frame(
            conn,
            wh.table("quarantine", "rows"),
            pd.DataFrame([{**row, "rule_id": rule, "message": "m"}]),
        )


def run(wh: Warehouse) -> tuple[dict[str, int], set[tuple[str, int, str]], pd.DataFrame]:
    """Run the rules; quarantine rows name each table's file from the delivery's manifest."""
    files = {t: {"file": f"{t}.csv"} for t in ("patients", "treatments", "pain_assessments")}
    files["adverse_events"] = {"file": "adverse_events.csv"}
    manifest = wh.table("staging", "deliveries")
    with wh.begin() as conn:
        conn.execute(
            manifest.insert().values(
                delivery_id=D, source="landing", path="p", sha256="s", status="loaded",
                files=json.dumps(files),
            )
        )  # fmt: skip
        counts = cross_checks.run(wh, conn, D, "run-1")
    rows = wh.read("quarantine", "rows")
    rows = rows[rows.rule_id != "x.y.z"]
    found = set(zip(rows.source_table, rows.source_row.astype(int), rows.rule_id, strict=True))
    return counts, found, rows


def patient(key: str, **extra) -> dict:
    row = {"patient_key": key, "sex": "F", "birth_year": "1970", "site_id": "S1"}
    if extra:
        row["extra"] = json.dumps(extra)
    return row


def treatment(
    tid: str, key: str, at: str, minutes: str = "40", route: str = "IV", dose="35", kg="70"
):
    return {
        "treatment_id": tid,
        "patient_key": key,
        "administered_at": at,
        "duration_min": minutes,
        "route": route,
        "dose_mg": dose,
        "weight_kg": kg,
    }


def test_clean_rows_pass_every_rule(wh):
    stage(wh, "patients", [patient("p1")])
    stage(wh, "treatments", [treatment("t1", "p1", "2024-01-01T10:00:00")])
    stage(
        wh,
        "pain_assessments",
        [
            {
                "assessment_id": "a1",
                "patient_key": "p1",
                "assessed_at": "2023-12-30",
                "pain_score": "7",
            }
        ],
    )
    stage(wh, "adverse_events", [{"treatment_id": "t1", "patient_key": "p1", "recorded_at": "2024-01-01T10:30:00", "event": "nausea"}])  # fmt: skip
    counts, found, _ = run(wh)
    assert found == set()
    assert set(counts) == {r.rule_id for r in cross_checks.RULES}
    assert not any(counts.values())


def test_unknown_and_quarantined_patients(wh):
    core(wh, "patients", [{"patient_key": "p-core"}])
    stage(wh, "patients", [patient("p1"), patient("p-bad")])
    quarantine(wh, "patients", 2)  # p-bad failed a GX rule
    stage(wh, "treatments", [
        treatment("t1", "p1", "2024-01-01T10:00:00"),
        treatment("t2", "p-core", "2024-01-01T10:00:00"),
        treatment("t3", "nobody", "2024-01-01T10:00:00"),
        treatment("t4", "p-bad", "2024-01-01T10:00:00"),
        treatment("t5", None, "2024-01-01T10:00:00"),  # not_null's job, not this rule's
    ])  # fmt: skip
    stage(wh, "pain_assessments", [{"assessment_id": "a1", "patient_key": "nobody", "assessed_at": "2024-01-01", "pain_score": "3"}])  # fmt: skip
    counts, found, rows = run(wh)
    assert found == {
        ("treatments", 3, "treatments.patient_id.known_patient"),
        ("treatments", 4, "treatments.patient_id.known_patient"),
        ("pain_assessments", 1, "pain_assessments.patient_id.known_patient"),
    }
    assert counts["treatments.patient_id.known_patient"] == 2
    messages = rows.set_index(["source_table", "source_row"])["message"]
    assert "neither this delivery's patients file" in messages[("treatments", 3)]
    assert "was quarantined" in messages[("treatments", 4)]
    assert set(rows.source_file) == {"treatments.csv", "pain_assessments.csv"}
    assert set(rows.run_id) == {"run-1"} and set(rows.delivery_id) == {D}


def refer(wh: Warehouse, table: str, keys: list[str]) -> None:
    """The distinct patients ingest records for a staged table (staging.patient_refs)."""
    frame = pd.DataFrame({"patient_key": keys, "delivery_id": D, "source_table": table})
    with wh.begin() as conn:
        wh.insert_frame(conn, wh.table("staging", "patient_refs"), frame)


def test_the_same_unknown_patients_are_found_with_patient_refs(wh):
    """With the refs ingest records, the rule first checks the distinct patients, and
    scans the rows only when one is unknown or quarantined: the same rows fail."""
    core(wh, "patients", [{"patient_key": "p-core"}])
    stage(wh, "patients", [patient("p1"), patient("p-bad")])
    quarantine(wh, "patients", 2)
    stage(wh, "treatments", [
        treatment("t1", "p1", "2024-01-01T10:00:00"),
        treatment("t2", "p-core", "2024-01-01T10:00:00"),
        treatment("t3", "p-bad", "2024-01-01T10:00:00"),
    ])  # fmt: skip
    stage(wh, "pain_assessments", [{"assessment_id": "a1", "patient_key": "p-core", "assessed_at": "2024-01-01", "pain_score": "3"}])  # fmt: skip
    refer(wh, "treatments", ["p1", "p-core", "p-bad"])
    refer(wh, "pain_assessments", ["p-core"])
    with wh.begin() as conn:
        checks = cross_checks.CrossChecks(wh, conn, D, "run-1", {})
        assert not checks.all_patients_known("treatments")  # p-bad's row was quarantined
        assert checks.all_patients_known("pain_assessments")
        assert not checks.all_patients_known("adverse_events")  # none recorded: scan rows
    _, found, _ = run(wh)
    assert found == {("treatments", 3, "treatments.patient_id.known_patient")}


def test_adverse_event_of_unknown_or_quarantined_treatment(wh):
    core(wh, "patients", [{"patient_key": "p1"}])
    core(wh, "treatments", [{"treatment_id": "t-core", "patient_key": "p1"}])
    stage(wh, "treatments", [
        treatment("t1", "p1", "2024-01-01T10:00:00"),
        treatment("t2", "ghost", "2024-02-01T10:00:00"),  # quarantined: unknown patient
    ])  # fmt: skip
    events = [{"treatment_id": t, "patient_key": "p1", "recorded_at": "2024-01-01T11:00:00", "event": "nausea"}
              for t in ("t1", "t-core", "t-none", "t2")]  # fmt: skip
    stage(wh, "adverse_events", events)
    _, found, _ = run(wh)
    assert found == {
        ("treatments", 2, "treatments.patient_id.known_patient"),
        ("adverse_events", 3, "adverse_events.treatment_id.known_treatment"),
        ("adverse_events", 4, "adverse_events.treatment_id.known_treatment"),
    }


@pytest.mark.parametrize(
    ("route", "dose", "kg", "bad"),
    [
        ("IV", "35", "70", False),  # 0.5 mg/kg
        ("IV", "350", "70", True),  # 5 mg/kg: above the IV bound
        ("IV", "0.35", "70", True),  # 0.005 mg/kg: µg entered as mg
        ("IM", "700", "70", False),  # 10 mg/kg is within IM's 13
        ("IN", "70", "35", False),  # 2 mg/kg
        ("PO", "350", "", False),  # no weight: cannot judge
        ("SC", "300", "70", True),
    ],
)
def test_dose_per_kg_for_route(wh, route, dose, kg, bad):
    stage(wh, "patients", [patient("p1")])
    stage(
        wh,
        "treatments",
        [treatment("t1", "p1", "2024-01-01T10:00:00", route=route, dose=dose, kg=kg or None)],
    )
    _, found, rows = run(wh)
    assert found == ({("treatments", 1, "treatments.dose_mg.per_kg_for_route")} if bad else set())
    if bad:
        message = rows.message.iloc[0]
        low, high = cross_checks.DOSE_MG_PER_KG_BOUNDS[route]
        assert f"{low:g}–{high:g} mg/kg for route {route}" in message and dose in message


def test_overlapping_administrations_across_offsets_and_core(wh):
    stage(wh, "patients", [patient("p1"), patient("p2")])
    core(wh, "treatments", [{"treatment_id": "t0", "patient_key": "p2", "administered_at": datetime(2024, 1, 1, 9, 0), "duration_min": 120.0}])  # fmt: skip
    stage(wh, "treatments", [
        treatment("t1", "p1", "2024-01-01T10:00:00Z", minutes="60"),
        treatment("t2", "p1", "2024-01-01T12:30:00+02:00", minutes="30"),  # 10:30 UTC: overlaps t1
        treatment("t3", "p1", "2024-01-01T11:00:00", minutes="30"),  # starts as t1 ends: fine
        treatment("t4", "p2", "2024-01-01T10:30:00", minutes="10"),  # inside core t0 (09:00-11:00)
        treatment("t5", "p2", "2024-01-02T10:00:00", minutes=""),  # no duration: zero length
        treatment("t6", "p2", "2024-01-02T10:00:00", minutes="5"),  # same start as t5: later id
    ])  # fmt: skip
    _, found, rows = run(wh)
    assert found == {
        ("treatments", 2, "treatments.administered_at.no_overlap"),
        ("treatments", 4, "treatments.administered_at.no_overlap"),
    }
    assert "previous: t1" in rows.set_index("source_row").message[2]


def test_redelivered_treatment_is_not_its_own_predecessor(wh):
    stage(wh, "patients", [patient("p1")])
    core(wh, "treatments", [{"treatment_id": "t1", "patient_key": "p1", "administered_at": datetime(2024, 1, 1, 10), "duration_min": 60.0}])  # fmt: skip
    stage(wh, "treatments", [treatment("t1", "p1", "2024-01-01T10:15:00", minutes="60")])
    _, found, _ = run(wh)
    assert found == set()


def test_treatment_after_death_and_bad_death_dates(wh):
    stage(wh, "patients", [
        patient("p1", death_date="2024-03-01"),
        patient("p2"),
        patient("p3", death_date="01/03/2024"),
    ])  # fmt: skip
    stage(wh, "treatments", [
        treatment("t1", "p1", "2024-03-01T23:00:00"),  # on the day of death: allowed
        treatment("t2", "p1", "2024-03-02T08:00:00"),
        treatment("t3", "p2", "2030-01-01T08:00:00"),
        treatment("t4", "p3", "2024-01-01T08:00:00"),  # patient quarantined: bad death_date
    ])  # fmt: skip
    stage(wh, "pain_assessments", [{"assessment_id": "a1", "patient_key": "p1", "assessed_at": "2023-12-01", "pain_score": "7"}])  # fmt: skip
    _, found, rows = run(wh)
    assert found == {
        ("patients", 3, "patients.death_date.is_iso_date"),
        ("treatments", 2, "treatments.administered_at.not_after_death"),
        ("treatments", 4, "treatments.patient_id.known_patient"),
    }
    death = rows[rows.rule_id.str.endswith("not_after_death")].iloc[0]
    assert death.value == "2024-03-02T08:00:00" and "death_date 2024-03-01" in death.message


def test_rules_skip_rows_already_quarantined(wh):
    stage(wh, "treatments", [treatment("t1", "ghost", "2024-01-01T10:00:00", dose="9999")])
    quarantine(wh, "treatments", 1)
    counts, found, _ = run(wh)
    assert found == set() and not any(counts.values())
