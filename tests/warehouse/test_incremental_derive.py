"""Incremental derive (issue 8) on SQLite and PostgreSQL: a night re-derives only the
patients its deliveries touched, and the result equals a full derive row for row."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from pipeline import stages
from pipeline.config import OutcomeDefinition, Settings
from pipeline.schema import PATIENT_KEY
from pipeline.synth import write_delivery
from pipeline.warehouse import Warehouse

STATE = ("current_episodes", "derived_patients", "derived_deliveries", "derive_state")


def corrections(folder: Path, first: Path) -> Path:
    """A delivery of corrections to ``first``'s patients (five of them touched):

    P000003's birth year, the dose of P000001's treatment T0000002, a new assessment for
    P000005, and P000002's first follow-up re-delivered as P000004's (same assessment id:
    P000002 loses it, which no row of this delivery names).
    """
    folder.mkdir(parents=True)
    patients = pd.read_csv(first / "patients.csv", dtype=str)
    patients = patients[patients.patient_id == "P000003"].assign(birth_year="1958")
    patients.to_csv(folder / "patients.csv", index=False)
    treatments = pd.read_csv(first / "treatments.csv", dtype=str)
    treatments = treatments[treatments.treatment_id == "T0000002"].assign(dose_mg="150.0")
    treatments.to_csv(folder / "treatments.csv", index=False)
    scores = pd.read_csv(first / "pain_assessments.csv", dtype=str)
    moved = scores[scores.patient_id == "P000002"].iloc[[1]].assign(patient_id="P000004")
    extra = scores[scores.patient_id == "P000005"].iloc[[-1]]
    extra = extra.assign(
        assessment_id="C0000001",
        assessed_at=(pd.Timestamp(extra.assessed_at.iloc[0]) + pd.Timedelta(days=2)).isoformat(),
        pain_score="3",
    )
    pd.concat([moved, extra]).to_csv(folder / "pain_assessments.csv", index=False)
    return folder


@pytest.fixture
def deliveries(tmp_path: Path) -> dict[str, Path]:
    """Landing folders: night 1 = delivery A; night 2 = A + B (new patients) + C (corrections)."""
    source = tmp_path / "deliveries"
    a = write_delivery(source / "d1-a", patients=80, seed=21)
    b = write_delivery(source / "d2-b", patients=12, seed=22, id_prefix="B")
    c = corrections(source / "d3-c", a)
    night1, night2 = tmp_path / "night1", tmp_path / "night2"
    shutil.copytree(a, night1 / a.name)
    for folder in (a, b, c):
        shutil.copytree(folder, night2 / folder.name)
    return {"night1": night1, "night2": night2}


def load(settings: Settings, run_id: str, landing: Path) -> None:
    stages.begin(settings, run_id=run_id, trigger="test", landing=landing)
    stages.ingest(settings, run_id, landing)
    stages.validate(settings, run_id)


def table(wh: Warehouse, name: str, drop_run: bool = True) -> pd.DataFrame:
    frame = wh.read("analysis", name)
    if drop_run:
        frame = frame.drop(columns="run_id")
    keys = [c for c in (PATIENT_KEY, "series_no", "delivery_id") if c in frame]
    return frame.sort_values(keys or list(frame.columns)).reset_index(drop=True)


def snapshot(wh: Warehouse) -> dict[str, pd.DataFrame]:
    return {name: table(wh, name, drop_run=False) for name in STATE}


def test_full_derive_equals_derive_then_incremental(warehouse_url, settings_for, deliveries):
    settings = settings_for(warehouse_url)
    wh = Warehouse(warehouse_url)
    load(settings, "night-1", deliveries["night1"])
    first = stages.derive(settings, "night-1")
    assert (first["mode"], first["why"], first["deliveries"]) == ("full", "first derive", 1)
    before = table(wh, "current_episodes")

    load(settings, "night-2", deliveries["night2"])
    night = stages.derive(settings, "night-2")
    assert night["mode"] == "incremental" and night["deliveries"] == 2
    assert night["patients"] == 12 + 5  # B's new patients and the five corrected ones
    incremental = table(wh, "current_episodes")
    counts = table(wh, "derived_patients")
    derived_by = wh.read("analysis", "current_episodes").groupby("run_id")[PATIENT_KEY].nunique()
    assert derived_by.to_dict() == {"night-1": 80 - 5, "night-2": 12 + 5}
    assert night["episodes"] == len(incremental) > len(before)

    stages.begin(settings, run_id="night-2-full", trigger="test")
    full = stages.derive(settings, "night-2-full", full=True)
    assert (full["mode"], full["why"]) == ("full", "full derive requested")
    pd.testing.assert_frame_equal(incremental, table(wh, "current_episodes"))
    pd.testing.assert_frame_equal(counts, table(wh, "derived_patients"))
    assert (full["episodes"], full["responders"], full["events"]) == (
        night["episodes"],
        night["responders"],
        night["events"],
    )
    # ...and equal to deriving all of core in memory, as analyst runs do
    stages.begin(settings, run_id="all-core", trigger="test")
    from pipeline.derive_stage import derive_and_store, read_episodes

    derive_and_store(wh, "all-core", settings.outcome)
    in_memory = read_episodes(wh, "all-core").drop(columns="run_id")
    in_memory = in_memory.sort_values([PATIENT_KEY, "series_no"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(incremental, in_memory)


def test_a_rerun_of_the_same_night_leaves_identical_tables(warehouse_url, settings_for, deliveries):
    settings = settings_for(warehouse_url)
    wh = Warehouse(warehouse_url)
    load(settings, "night-1", deliveries["night1"])
    stages.derive(settings, "night-1")
    after_first = snapshot(wh)
    assert stages.derive(settings, "night-1")["why"] == "re-run of a full derive"
    for name, frame in snapshot(wh).items():
        pd.testing.assert_frame_equal(frame, after_first[name], obj=name)

    load(settings, "night-2", deliveries["night2"])
    first = stages.derive(settings, "night-2")
    after_second = snapshot(wh)
    again = stages.derive(settings, "night-2")
    assert again == first
    for name, frame in snapshot(wh).items():
        pd.testing.assert_frame_equal(frame, after_second[name], obj=name)


def test_a_night_without_deliveries_derives_nobody(warehouse_url, settings_for, deliveries):
    settings = settings_for(warehouse_url)
    wh = Warehouse(warehouse_url)
    load(settings, "night-1", deliveries["night1"])
    stages.derive(settings, "night-1")
    before = table(wh, "current_episodes", drop_run=False)
    load(settings, "night-2", deliveries["night1"])  # the same delivery: skipped by hash
    counts = stages.derive(settings, "night-2")
    assert (counts["mode"], counts["patients"], counts["deliveries"], counts["derived"]) == (
        "incremental",
        0,
        0,
        0,
    )
    pd.testing.assert_frame_equal(table(wh, "current_episodes", drop_run=False), before)
    assert wh.read("analysis", "derive_state").run_id.tolist() == ["night-2"]


def test_a_changed_outcome_definition_derives_everything(warehouse_url, settings_for, deliveries):
    settings = settings_for(warehouse_url)
    wh = Warehouse(warehouse_url)
    load(settings, "night-1", deliveries["night1"])
    stages.derive(settings, "night-1")
    stricter = Settings(
        warehouse_url=warehouse_url,
        report_dir=settings.report_dir,
        demo=True,
        outcome=OutcomeDefinition(response_threshold=0.5),
    )
    load(stricter, "night-2", deliveries["night1"])
    counts = stages.derive(stricter, "night-2")
    assert (counts["mode"], counts["why"]) == ("full", "outcome definition changed")
    current = wh.read("analysis", "current_episodes")
    assert set(current.run_id) == {"night-2"}
    from pipeline.derive_stage import derive_and_store, read_episodes

    stages.begin(stricter, run_id="check", trigger="test")
    derive_and_store(wh, "check", stricter.outcome)
    expected = read_episodes(wh, "check").drop(columns="run_id")
    pd.testing.assert_frame_equal(
        current.drop(columns="run_id")
        .sort_values([PATIENT_KEY, "series_no"])
        .reset_index(drop=True),
        expected.sort_values([PATIENT_KEY, "series_no"]).reset_index(drop=True),
    )


def test_new_patients_only_take_the_one_pass_path(
    warehouse_url, settings_for, deliveries, tmp_path, monkeypatch
):
    """No older row replaced or deleted: the per-patient recount is not needed."""
    from pipeline import derive_stage

    settings = settings_for(warehouse_url)
    wh = Warehouse(warehouse_url)
    load(settings, "night-1", deliveries["night1"])
    stages.derive(settings, "night-1")
    night2 = tmp_path / "night2-new-only"
    for folder in ("d1-a", "d2-b"):
        shutil.copytree(deliveries["night2"] / folder, night2 / folder)
    load(settings, "night-2", night2)

    def recount(*args, **kwargs):
        raise AssertionError("recounted every patient although only new rows arrived")

    with monkeypatch.context() as patched:
        patched.setattr(derive_stage, "recounted_patients", recount)
        counts = stages.derive(settings, "night-2")
    assert (counts["mode"], counts["patients"], counts["deliveries"]) == ("incremental", 12, 1)
    incremental = table(wh, "current_episodes")
    stages.begin(settings, run_id="full", trigger="test")
    stages.derive(settings, "full", full=True)
    pd.testing.assert_frame_equal(incremental, table(wh, "current_episodes"))
