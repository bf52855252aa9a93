"""A corrupted copy of a synthetic delivery: exact quarantine counts per rule, on both engines.

The corruption is done with pandas on the delivery's CSV files; every change adds the
rows it must quarantine to ``expected`` (rule id -> rows), cascades included: a
quarantined patient takes its treatments, assessments and adverse events with it, a
quarantined treatment takes its adverse events.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from pipeline import cli_dq, stages
from pipeline.synth import write_delivery
from pipeline.validate import ValidationBlocked
from pipeline.warehouse import Warehouse

TABLES = ("patients", "treatments", "pain_assessments", "adverse_events")


@dataclass(frozen=True)
class Corrupted:
    landing: Path
    expected: dict[str, int]  # rule_id -> rows quarantined
    rows_in: dict[str, int]


def _read(folder: Path) -> dict[str, pd.DataFrame]:
    return {t: pd.read_csv(folder / f"{t}.csv", dtype=str, keep_default_na=False) for t in TABLES}


def _corrupt(folder: Path) -> dict[str, int]:
    f = _read(folder)
    pts, tr, pa, ae = (f[t] for t in TABLES)
    tr_time = pd.to_datetime(tr.administered_at)
    expected: dict[str, int] = {}

    def add(rule: str, n: int) -> None:
        expected[rule] = expected.get(rule, 0) + n

    def patient_with_treatments(n: int, taken: set[str]) -> str:
        counts = tr.patient_id.value_counts()
        return next(p for p in counts.index if counts[p] >= n and p not in taken)

    # patients: a wrong type; the patient's rows all go as "patient quarantined".
    bad_patient = pts.patient_id[4]
    pts.loc[4, "birth_year"] = "19x0"
    add("patients.birth_year.is_integer", 1)
    taken = {bad_patient}
    # death_date is an extra column today (kept in ``extra``): one patient died after
    # their first treatment day.
    dead = patient_with_treatments(3, taken)
    taken.add(dead)
    first_day = tr_time[tr.patient_id == dead].min().normalize()
    pts["death_date"] = ""
    pts.loc[pts.patient_id == dead, "death_date"] = f"{first_day:%Y-%m-%d}"
    after_death = tr.index[(tr.patient_id == dead) & (tr_time >= first_day + pd.Timedelta(days=1))]
    add("treatments.administered_at.not_after_death", len(after_death))

    # treatments (rows chosen among patients not otherwise touched)
    free = tr.index[~tr.patient_id.isin(taken)]
    i_type, i_unknown, i_dose, i_dup_a, i_dup_b = free[[9, 19, 29, 39, 40]]
    tr.loc[i_type, "dose_mg"] = "abc"
    add("treatments.dose_mg.is_decimal", 1)
    tr.loc[i_unknown, "patient_id"] = "P999999"
    add("treatments.patient_id.known_patient", 1)
    tr.loc[i_dose, ["route", "weight_kg", "dose_mg"]] = ["IV", "70", "400"]  # 5.7 mg/kg
    add("treatments.dose_mg.per_kg_for_route", 1)
    dup_ids = {tr.treatment_id[i_dup_a], tr.treatment_id[i_dup_b]}
    tr.loc[i_dup_b, "treatment_id"] = tr.treatment_id[i_dup_a]
    add("treatments.treatment_id.unique", 2)
    # overlap: the second administration of a patient starts 5 minutes after the first
    overlap_patient = patient_with_treatments(
        2, taken | set(tr.patient_id[[i_unknown, i_dup_a, i_dup_b, i_type, i_dose]])
    )
    taken.add(overlap_patient)
    first, second = tr_time[tr.patient_id == overlap_patient].sort_values().index[:2]
    tr.loc[first, "duration_min"] = "60"
    tr.loc[second, "administered_at"] = (
        f"{tr_time[first] + pd.Timedelta(minutes=5):%Y-%m-%dT%H:%M:%S}"
    )
    add("treatments.administered_at.no_overlap", 1)

    # pain assessments
    pa_free = pa.index[~pa.patient_id.isin(taken)]
    rows = pa_free[[100, 101, 102]]
    pa.loc[rows, "pain_score"] = "11"
    add("pain_assessments.pain_score.between_0_10", 3)
    pa.loc[pa_free[[200, 201]], "pain_score"] = "seven"
    add("pain_assessments.pain_score.is_integer", 2)
    pa.loc[pa_free[[300, 301, 302, 303]], "patient_id"] = "P999998"
    add("pain_assessments.patient_id.known_patient", 4)
    pa.loc[pa_free[401], "assessment_id"] = pa.assessment_id[pa_free[400]]
    add("pain_assessments.assessment_id.unique", 2)
    pa.loc[pa_free[500], "assessed_at"] = "2099-01-01T10:00:00"
    add("pain_assessments.assessed_at.between_1990_now", 1)

    # adverse events
    ae_free = ae.index[
        ~ae.patient_id.isin(taken) & ~ae.treatment_id.isin(dup_ids | {tr.treatment_id[i_unknown]})
    ]
    ae.loc[ae_free[5], "severity"] = "fatal"
    add("adverse_events.severity.in_set", 1)
    ae.loc[ae_free[6], "patient_id"] = "P999997"
    add("adverse_events.patient_id.known_patient", 1)

    # cascades, judged on the corrupted files
    add("treatments.patient_id.known_patient", int((tr.patient_id == bad_patient).sum()))
    add("pain_assessments.patient_id.known_patient", int((pa.patient_id == bad_patient).sum()))
    ae_bad_patient = ae.patient_id == bad_patient
    add("adverse_events.patient_id.known_patient", int(ae_bad_patient.sum()))
    gone = dup_ids | set(tr.treatment_id[[i_type, i_unknown, i_dose, second, *after_death]])
    orphans = ae.treatment_id.isin(gone) & ~ae_bad_patient & (ae.index != ae_free[6])
    orphans &= ae.index != ae_free[5]
    add("adverse_events.treatment_id.known_treatment", int(orphans.sum()))

    for table, frame in f.items():
        frame.to_csv(folder / f"{table}.csv", index=False)
    return {rule: n for rule, n in expected.items() if n}


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory: pytest.TempPathFactory) -> Corrupted:
    landing = tmp_path_factory.mktemp("corrupted")
    folder = write_delivery(landing / "delivery-001", patients=300, seed=23)
    expected = _corrupt(folder)
    rows_in = {t: len(f) for t, f in _read(folder).items()}
    # a second delivery whose assessments file lacks a column: ingest fails it alone
    broken = write_delivery(landing / "delivery-002", patients=20, seed=24)
    pa = pd.read_csv(broken / "pain_assessments.csv", dtype=str)
    pa.drop(columns="pain_score").to_csv(broken / "pain_assessments.csv", index=False)
    return Corrupted(landing, expected, rows_in)


def _count(wh: Warehouse, layer: str, name: str, where=None) -> int:
    table = wh.table(layer, name)
    query = select(func.count()).select_from(table)
    if where is not None:
        query = query.where(where(table))
    with wh.engine.connect() as conn:
        return conn.execute(query).scalar_one()


def test_corrupted_delivery_quarantines_exactly_the_bad_rows(
    warehouse_url, settings_for, corrupted, capsys
):
    settings = settings_for(warehouse_url)
    summary = stages.run_all(settings, corrupted.landing)
    wh = Warehouse(warehouse_url)

    quarantine = wh.read("quarantine", "rows")
    assert quarantine.groupby("rule_id").size().to_dict() == corrupted.expected
    assert quarantine.message.str.len().min() > 10
    assert set(quarantine.run_id) == {summary.run_id}
    assert not quarantine.duplicated(["source_table", "source_row", "rule_id"]).any()

    # accounting identity per delivery and table: rows in = promoted + quarantined
    (delivery_id,) = summary.counts["validate"]
    counts = summary.counts["validate"][delivery_id]
    assert counts["in"] == corrupted.rows_in
    for table in TABLES:
        promoted = _count(wh, "core", table, lambda t: t.c.delivery_id == delivery_id)
        bad = quarantine.loc[quarantine.source_table == table, "source_row"].nunique()
        assert corrupted.rows_in[table] == promoted + bad, table
        assert counts["promoted"][table] == promoted
        assert counts["quarantined"][table] == bad

    # dq per rule agrees with quarantine
    dq = wh.read("dq", "validation_results")
    failed = dq[(dq.rows_failed > 0) & ~dq.rule_id.str.endswith(".all_rules")]
    assert dict(zip(failed.rule_id, failed.rows_failed, strict=True)) == corrupted.expected
    assert set(dq.run_id) == {summary.run_id}

    # the delivery with the missing column failed alone, naming file and column
    manifest = wh.read("staging", "deliveries").set_index("status")
    assert sorted(manifest.index) == ["failed", "promoted"]
    error = manifest.loc["failed", "error"]
    assert "pain_assessments.csv" in error and "pain_score" in error
    assert summary.counts["ingest"]["failed"] == [error]

    # the report lists the rules
    html = Path(summary.report).read_text(encoding="utf-8")
    for rule in corrupted.expected:
        assert rule in html

    # relief dq prints them grouped by rule
    parser = argparse.ArgumentParser()
    handlers = cli_dq.add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dq", "--warehouse", warehouse_url, "--examples", "2"])
    assert handlers["dq"](args) == 0
    out = capsys.readouterr().out
    assert f"run {summary.run_id}" in out and f"delivery {delivery_id}: promoted" in out
    for rule, n in corrupted.expected.items():
        line = next(line for line in out.splitlines() if line.startswith(rule + " "))
        assert f" {n} " in line
    assert "pain_assessments.csv:" in out


def test_relief_dq_by_run_id_and_failures_by_rule(warehouse_url, settings_for, corrupted, capsys):
    run = stages.run_all(settings_for(warehouse_url), corrupted.landing)
    wh = Warehouse(warehouse_url)
    assert cli_dq.last_validated_run(wh) == run.run_id
    table = cli_dq.failures_by_rule(wh, run.run_id, examples=3)
    assert dict(zip(table.rule_id, table.rows_failed, strict=True)) == corrupted.expected
    assert table.examples.str.count(",").max() <= 2
    # a re-run finds nothing new: `relief dq` still shows the last run that validated
    again = stages.run_all(settings_for(warehouse_url), corrupted.landing)
    assert cli_dq.last_validated_run(wh) == run.run_id
    parser = argparse.ArgumentParser()
    handlers = cli_dq.add_commands(parser.add_subparsers(dest="command"))
    from pipeline.config import ConfigError

    with pytest.raises(ConfigError, match="no validation results"):
        handlers["dq"](
            parser.parse_args(["dq", "--warehouse", warehouse_url, "--run", again.run_id])
        )
    assert (
        handlers["dq"](parser.parse_args(["dq", "--warehouse", warehouse_url, "--run", run.run_id]))
        == 0
    )
    assert f"run {run.run_id}" in capsys.readouterr().out


def test_more_than_five_percent_bad_rows_block_the_delivery(warehouse_url, settings_for, tmp_path):
    folder = write_delivery(tmp_path / "landing" / "d1", patients=60, seed=31)
    pa = pd.read_csv(folder / "pain_assessments.csv", dtype=str, keep_default_na=False)
    n_bad = int(len(pa) * 0.06) + 1
    pa.loc[: n_bad - 1, "pain_score"] = "12"
    pa.to_csv(folder / "pain_assessments.csv", index=False)
    settings = settings_for(warehouse_url)
    run_id = stages.begin(settings)
    stages.ingest(settings, run_id, folder.parent)
    with pytest.raises(ValidationBlocked) as info:
        stages.validate(settings, run_id)
    message = str(info.value)
    assert "pain_assessments" in message and "pain_assessments.pain_score.between_0_10" in message
    assert "more than the allowed 5%" in message and "relief dq" in message
    wh = Warehouse(settings.warehouse_url)
    for table in TABLES:
        assert _count(wh, "core", table) == 0
    assert wh.read("staging", "deliveries").status.tolist() == ["blocked"]
    assert _count(wh, "quarantine", "rows") == n_bad
    assert wh.read("results", "model_runs").status.tolist() == ["failed"]
