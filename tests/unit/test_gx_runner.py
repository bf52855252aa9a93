"""The GX suites under expectations/, run by pipeline.gx_runner on small staging frames."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from pipeline.gx_context import DEFAULT_CONTEXT_ROOT
from pipeline.gx_runner import (
    FAILURE_COLUMNS,
    SUMMARY_COLUMNS,
    SchemaError,
    run_suite,
    suite_rules,
    suite_summary,
    validate,
)
from pipeline.schema import LANDING_REQUIRED

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def staging(rows: list[dict], **lineage) -> pd.DataFrame:
    frame = pd.DataFrame(rows).astype(object)
    frame = frame.where(frame.notna(), None)
    frame["source_row"] = range(1, len(frame) + 1)
    frame["delivery_id"] = lineage.get("delivery_id", "d-001")
    frame["source_file"] = lineage.get("source_file", "pain_assessments.csv")
    return frame


def pairs(failures: pd.DataFrame) -> set[tuple[int, str]]:
    return set(zip(failures["source_row"].astype(int), failures["rule_id"], strict=True))


def pain(aid, pid, at, score) -> dict:
    return {"assessment_id": aid, "patient_id": pid, "assessed_at": at, "pain_score": score}


CLEAN_PAIN = [
    pain("a1", "p1", "2024-01-01T10:00:00", "5"),
    pain("a2", "p1", "2024-01-02T10:00:00Z", "0"),
    pain("a3", "p2", "2024-01-01T10:00:00.250+02:00", "10"),
    pain("a4", "p2", "2024-01-05", "3"),
]


def test_clean_pain_assessments_yield_no_rows():
    failures = run_suite("pain_assessments", staging(CLEAN_PAIN), now=NOW)
    assert list(failures.columns) == list(FAILURE_COLUMNS)
    assert failures.empty


def test_bad_pain_assessments_are_reported_per_row_and_rule():
    frame = staging(
        CLEAN_PAIN
        + [
            pain("a5", "p3", "2024-02-01T09:00:00", "12"),  # 5: out of range
            pain("a6", "p3", "2024-02-02T09:00:00", "abc"),  # 6: not a number (not also range)
            pain("a7", "p3", "2025-06-02T09:00:00", "4"),  # 7: after NOW
            pain("a1", "p4", "2024-02-03T09:00:00", "4"),  # 8: duplicate id of row 1
            pain("a9", "p1", "2024-01-01T10:00:00+00:00", "6"),  # 9: same instant as row 1
            pain("a10", "p5", "2024-02-30", "2"),  # 10: no such date
            pain("a11", "p5", "01/02/2024", "2.5"),  # 11: not ISO, not whole
            pain("a12", "p5", "1989-12-31", None),  # 12: before 1990, score missing
        ]
    )
    failures = run_suite("pain_assessments", frame, now=NOW)
    assert pairs(failures) == {
        (5, "pain_assessments.pain_score.between_0_10"),
        (6, "pain_assessments.pain_score.is_integer"),
        (7, "pain_assessments.assessed_at.between_1990_now"),
        (1, "pain_assessments.assessment_id.unique"),
        (8, "pain_assessments.assessment_id.unique"),
        (1, "pain_assessments.patient_id_assessed_at.unique"),
        (9, "pain_assessments.patient_id_assessed_at.unique"),
        (10, "pain_assessments.assessed_at.valid_datetime"),
        (11, "pain_assessments.assessed_at.is_iso8601"),
        (11, "pain_assessments.pain_score.is_integer"),
        (12, "pain_assessments.assessed_at.between_1990_now"),
        (12, "pain_assessments.pain_score.not_null"),
    }
    assert len(failures) == len(pairs(failures))  # one row per (row, rule), no repeats
    row5 = failures[failures.source_row == 5].iloc[0]
    assert row5["column"] == "pain_score"
    assert row5["value"] == "12"
    assert row5["message"] == "pain_score '12' is outside 0–10"
    row6 = failures[failures.source_row == 6].iloc[0]
    assert row6["value"] == "abc"
    assert "not a whole number" in row6["message"]
    missing = failures[(failures.source_row == 12) & (failures.column == "pain_score")].iloc[0]
    assert missing["value"] is None
    assert failures["source_row"].dtype.kind == "i"


BAD_PAIN = CLEAN_PAIN + [
    pain("a5", "p3", "2024-02-01T09:00:00", "12"),
    pain("a1", "p4", "2024-02-03T09:00:00", "4"),
    pain("a9", "p1", "2024-01-01T10:00:00+00:00", "6"),
    pain("a10", "p5", "2024-02-30", "2"),
    pain("a12", None, "1989-12-31", None),
]


def test_a_suite_checked_in_parts_gives_the_whole_suites_verdict():
    """Row rules slice by slice plus table-wide rules on the key columns alone (what
    ingest does, pipeline.row_checks) = the whole suite on the whole frame."""
    from pipeline import gx_runner
    from pipeline.gx_frame import prepare

    whole = validate("pain_assessments", staging(BAD_PAIN), now=NOW)
    prepared = prepare("pain_assessments", staging(BAD_PAIN))
    slices = [prepared.iloc[i : i + 3].reset_index(drop=True) for i in range(0, len(prepared), 3)]
    keys = prepared.loc[:, list(gx_runner.table_wide_columns("pain_assessments"))]
    parts = [gx_runner.check("pain_assessments", part, "rows", now=NOW) for part in slices]
    parts.append(gx_runner.check("pain_assessments", keys, "table", now=NOW))
    combined = gx_runner.combine("pain_assessments", parts)
    pd.testing.assert_frame_equal(combined.failures, whole.failures)
    pd.testing.assert_frame_equal(combined.summary, whole.summary)
    assert combined.success is whole.success is False
    assert set(keys.columns) == {
        "source_row",
        "assessment_id",
        "patient_id",
        "assessed_at__typed",
        "assessed_at",
    }


def test_a_rule_that_crashes_is_an_error_not_a_pass(monkeypatch):
    """GX reports a metric's exception as {metric: ExceptionInfo} on a failed result with
    no rows; read as a verdict, the rule would pass every row."""
    import pipeline.gx_expectations as custom

    def broken(frame):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(custom, "duplicated_rows", broken)
    with pytest.raises(RuntimeError, match="patient_id_assessed_at.unique crashed: boom"):
        validate("pain_assessments", staging(BAD_PAIN), now=NOW)


def test_row_order_does_not_matter():
    """Staging usually arrives sorted by source_row; values are found either way."""
    frame = staging(BAD_PAIN)
    shuffled = frame.sample(frac=1, random_state=3).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        run_suite("pain_assessments", shuffled, now=NOW),
        run_suite("pain_assessments", frame, now=NOW),
    )


def test_now_is_injectable():
    frame = staging([pain("a1", "p1", "2025-06-02T09:00:00", "4")])
    assert pairs(run_suite("pain_assessments", frame, now=NOW)) == {
        (1, "pain_assessments.assessed_at.between_1990_now")
    }
    later = datetime(2025, 7, 1)  # naive: taken as UTC
    assert run_suite("pain_assessments", frame, now=later).empty


def test_unknown_route_and_out_of_range_treatment_values():
    base = {
        "treatment_id": "t1",
        "patient_id": "p1",
        "administered_at": "2024-03-01T08:00:00",
        "duration_min": "40",
        "route": "IV",
        "dose_mg": "35.5",
        "weight_kg": "70",
    }
    rows = [
        base,
        {**base, "treatment_id": "t2", "route": "XX"},
        {**base, "treatment_id": "t3", "dose_mg": "0"},
        {**base, "treatment_id": "t4", "dose_mg": "500", "weight_kg": "301"},
        {**base, "treatment_id": "t5", "duration_min": "1441", "weight_kg": None},
        {**base, "treatment_id": "t6", "dose_mg": "lots"},
    ]
    failures = run_suite("treatments", staging(rows), now=NOW)
    assert pairs(failures) == {
        (2, "treatments.route.in_set"),
        (3, "treatments.dose_mg.gt_0_le_500"),
        (4, "treatments.weight_kg.between_20_300"),
        (5, "treatments.duration_min.between_0_1440"),
        (6, "treatments.dose_mg.is_decimal"),
    }
    route = failures[failures.rule_id == "treatments.route.in_set"].iloc[0]
    assert route["value"] == "XX"
    assert route["message"] == "route 'XX' is not one of IV, IM, IN, SC, PO"


def test_patients_and_adverse_events():
    patients = [
        {"patient_id": "p1", "sex": "F", "birth_year": "1970", "primary_condition": "CRPS",
         "comorbidities": None, "site_id": "s1"},
        {"patient_id": "p2", "sex": "Q", "birth_year": "2026", "primary_condition": "MDD",
         "comorbidities": "F32;G43", "site_id": "s1"},
        {"patient_id": "p1", "sex": "M", "birth_year": "19x0", "primary_condition": "CRPS",
         "comorbidities": None, "site_id": "s2"},
    ]  # fmt: skip
    assert pairs(run_suite("patients", staging(patients), now=NOW)) == {
        (1, "patients.patient_id.unique"),
        (3, "patients.patient_id.unique"),
        (2, "patients.sex.in_set"),
        (2, "patients.birth_year.between_1900_current_year"),
        (3, "patients.birth_year.is_integer"),
    }
    events = [
        {"treatment_id": "t1", "patient_id": "p1", "recorded_at": "2024-03-01T09:00:00",
         "event": "nausea", "severity": "mild"},
        {"treatment_id": "t1", "patient_id": "p1", "recorded_at": "2024-03-01T09:00:00Z",
         "event": "nausea", "severity": "fatal"},
    ]  # fmt: skip
    assert pairs(run_suite("adverse_events", staging(events), now=NOW)) == {
        (1, "adverse_events.treatment_id_event_recorded_at.unique"),
        (2, "adverse_events.treatment_id_event_recorded_at.unique"),
        (2, "adverse_events.severity.in_set"),
    }


def test_missing_required_column_raises_schema_error():
    frame = staging(CLEAN_PAIN).drop(columns=["pain_score"])
    with pytest.raises(SchemaError) as info:
        run_suite("pain_assessments", frame, now=NOW)
    assert info.value.table == "pain_assessments"
    assert info.value.missing == ("pain_score",)
    assert "pain_score" in str(info.value) and "re-deliver" in str(info.value)


def test_extra_columns_are_fine():
    frame = staging(CLEAN_PAIN).assign(clinician="dr x", note=None)
    assert run_suite("pain_assessments", frame, now=NOW).empty


def test_summary_counts_per_expectation():
    frame = staging(CLEAN_PAIN + [pain("a5", "p3", "2024-02-01T09:00:00", "12")])
    summary = suite_summary("pain_assessments", frame, now=NOW)
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert summary["rule_id"].is_unique
    rng = summary.set_index("rule_id").loc["pain_assessments.pain_score.between_0_10"]
    assert (rng["evaluated"], rng["unexpected"], rng["reported"], rng["success"]) == (
        5,
        1,
        1,
        False,
    )
    assert rng["expectation_type"] == "expect_column_values_to_be_between"
    assert summary.loc[summary.rule_id != rng.name, "success"].all()
    outcome = validate("pain_assessments", frame, now=NOW)
    assert not outcome.success and len(outcome.failures) == 1


def test_suites_are_gx_json_with_unique_readable_rule_ids():
    rule_ids: list[str] = []
    for table, required in LANDING_REQUIRED.items():
        path = Path(DEFAULT_CONTEXT_ROOT) / "suites" / f"{table}.json"
        stored = json.loads(path.read_text())
        assert stored["name"] == table
        types = {e["type"] for e in stored["expectations"]}
        assert "expect_table_columns_to_match_set" in types
        blocking = [e for e in stored["expectations"] if e["meta"].get("blocking")]
        assert [e["kwargs"]["column_set"] for e in blocking] == [list(required)]
        rules = suite_rules(table)
        assert all(r.startswith(f"{table}.") for r in rules["rule_id"])
        rule_ids += list(rules["rule_id"])
    assert len(rule_ids) == len(set(rule_ids))


def test_validating_writes_nothing_into_expectations(tmp_path):
    before = {p: p.stat().st_mtime_ns for p in Path(DEFAULT_CONTEXT_ROOT).rglob("*")}
    run_suite("pain_assessments", staging(CLEAN_PAIN), now=NOW)
    after = {p: p.stat().st_mtime_ns for p in Path(DEFAULT_CONTEXT_ROOT).rglob("*")}
    assert after == before


def test_docs_list_every_rule_id():
    from pipeline.cross_checks import RULES

    docs = (Path(DEFAULT_CONTEXT_ROOT).parent / "docs" / "validation.md").read_text()
    rule_ids = [r.rule_id for r in RULES]
    for table in LANDING_REQUIRED:
        rule_ids += list(suite_rules(table)["rule_id"])
    assert [r for r in rule_ids if f"`{r}`" not in docs] == []


def test_data_docs_are_built_into_the_run_folder_only(tmp_path):
    from pipeline.data_docs import build_data_docs

    before = {p: p.stat().st_mtime_ns for p in Path(DEFAULT_CONTEXT_ROOT).rglob("*")}
    results = pd.DataFrame(
        {
            "delivery_id": "d-1",
            "source_table": "pain_assessments",
            "rule_id": [
                "pain_assessments.pain_score.between_0_10",
                "pain_assessments.patient_id.known_patient",
                "pain_assessments.all_rules",
            ],
            "rows_checked": [10, 10, 10],
            "rows_failed": [2, 1, 3],
            "success": [False, False, False],
        }
    )
    index = build_data_docs("r-1", tmp_path, results)
    assert index == tmp_path.resolve() / "r-1" / "data_docs" / "index.html"
    assert index.exists()
    pages = list((index.parent / "validations").rglob("*.html"))
    assert pages and "known_patient" in pages[0].read_text(encoding="utf-8")
    assert build_data_docs("r-2", tmp_path, results.iloc[0:0]) is None
    after = {p: p.stat().st_mtime_ns for p in Path(DEFAULT_CONTEXT_ROOT).rglob("*")}
    assert after == before
