"""The synthetic generator: reproducible, on contract, and realistic where it matters."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.schema import LANDING_REQUIRED
from pipeline.synth import generate, true_episodes, write_delivery

N = 1500
SEED = 11
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
TS_COLUMNS = {
    "treatments": "administered_at",
    "pain_assessments": "assessed_at",
    "adverse_events": "recorded_at",
}


@pytest.fixture(scope="module")
def delivery() -> tuple[dict[str, pd.DataFrame], dict]:
    return generate(N, SEED)


@pytest.fixture(scope="module")
def episodes() -> pd.DataFrame:
    return true_episodes(N, SEED)


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_same_seed_gives_byte_identical_files(tmp_path: Path, fmt: str) -> None:
    a = _files(write_delivery(tmp_path / "a", 300, 5, fmt))
    b = _files(write_delivery(tmp_path / "b", 300, 5, fmt))
    expected = {f"{t}.{fmt}" for t in LANDING_REQUIRED} | {"truth.json"}
    assert set(a) == expected
    assert a == b


def test_different_seed_differs(tmp_path: Path) -> None:
    a = _files(write_delivery(tmp_path / "a", 300, 5))
    b = _files(write_delivery(tmp_path / "b", 300, 6))
    for name in a:
        assert a[name] != b[name], name


def test_files_have_contract_columns_in_order(tmp_path: Path) -> None:
    out = write_delivery(tmp_path / "d", 200, 1)
    for table, cols in LANDING_REQUIRED.items():
        header = (out / f"{table}.csv").read_text().splitlines()[0]
        assert header.split(",") == list(cols)
        assert len(pd.read_csv(out / f"{table}.csv")) > 0
    truth = json.loads((out / "truth.json").read_text())
    assert set(truth["log_hazard_ratios"]) == {
        "route[IM]",
        "route[IN]",
        "is_series",
        "dose_mg_per_kg",
        "infusion_hours",
        "n_comorbidities",
        "baseline_score",
    }
    assert {"shape", "scale"} <= set(truth["weibull"])
    assert truth["seed"] == 1 and truth["patients"] == 200
    assert truth["non_responder_share"] == pytest.approx(0.2)
    assert isinstance(truth["notes"], str)


def test_frames_have_contract_columns(delivery) -> None:
    frames, _ = delivery
    for table, cols in LANDING_REQUIRED.items():
        assert tuple(frames[table].columns) == cols


def test_routes_and_route_typical_doses_and_lengths(delivery) -> None:
    tr = delivery[0]["treatments"]
    assert set(tr["route"]) <= {"IV", "IM", "IN"}
    share = tr.groupby("route").size() / len(tr)
    assert share["IV"] > share["IN"] > share["IM"] > 0.1
    mgkg = tr["dose_mg"] / tr["weight_kg"]
    tol = 0.002  # dose_mg is rounded to 0.1 mg
    limits = {"IV": (0.1, 1.0, 30, 240), "IM": (0.2, 1.0, 1, 2), "IN": (0.2, 1.0, 2, 10)}
    for route, (lo, hi, dmin, dmax) in limits.items():
        sel = tr["route"] == route
        assert mgkg[sel].between(lo - tol, hi + tol).all(), route
        assert tr.loc[sel, "duration_min"].between(dmin, dmax).all(), route
    assert tr["weight_kg"].between(45, 130).all()
    assert (tr.groupby("patient_id")["weight_kg"].nunique() == 1).all()


def test_non_responder_share_about_20_percent(episodes) -> None:
    assert 1 - episodes["responder"].mean() == pytest.approx(0.20, abs=0.03)
    # After derivation a few early returns look like non-responders, never the reverse.
    derived = episodes["expected_responded"]
    assert not (derived & ~episodes["responder"]).any()
    assert 1 - derived.mean() == pytest.approx(0.22, abs=0.04)


def test_timestamps_iso_and_within_2021_2025(delivery) -> None:
    frames, _ = delivery
    for table, col in TS_COLUMNS.items():
        values = frames[table][col]
        assert values.str.match(ISO).all(), table
        ts = pd.to_datetime(values, format="%Y-%m-%dT%H:%M:%S")
        assert ts.min() >= pd.Timestamp("2021-01-01"), table
        assert ts.max() <= pd.Timestamp("2025-12-31T23:59:59"), table


def test_scores_are_integers_0_to_10(delivery) -> None:
    scores = delivery[0]["pain_assessments"]["pain_score"]
    assert pd.api.types.is_integer_dtype(scores)
    assert scores.between(0, 10).all()


def test_ids_unique_and_formatted(delivery) -> None:
    frames, _ = delivery
    for table, col, pattern in [
        ("patients", "patient_id", r"^P\d{6}$"),
        ("treatments", "treatment_id", r"^T\d{7}$"),
        ("pain_assessments", "assessment_id", r"^A\d{8}$"),
    ]:
        ids = frames[table][col]
        assert ids.is_unique, table
        assert ids.str.match(pattern).all(), table
    ae = frames["adverse_events"]
    assert not ae.duplicated(["treatment_id", "event", "recorded_at"]).any()
    assert set(ae["treatment_id"]) <= set(frames["treatments"]["treatment_id"])


def test_patients_look_plausible(delivery) -> None:
    pat = delivery[0]["patients"]
    assert (pat["sex"] == "F").mean() == pytest.approx(0.6, abs=0.05)
    assert pat["birth_year"].between(1940, 2003).all()
    codes = {"F32.9", "F41.1", "I10", "E11.9", "G47.00", "F11.20"}
    split = pat["comorbidities"].str.split(";").explode()
    assert set(split[split != ""]) <= codes
    assert (pat["comorbidities"] == "").any()
    assert set(pat["site_id"]) <= {"S01", "S02", "S03", "S04", "S05"}


def test_series_are_separated_and_baselines_in_range(delivery, episodes) -> None:
    tr = delivery[0]["treatments"].copy()
    tr["at"] = pd.to_datetime(tr["administered_at"])
    tr["end"] = tr["at"] + pd.to_timedelta(tr["duration_min"], unit="min")
    gap = (tr["at"] - tr.groupby("patient_id")["end"].shift()).dt.total_seconds() / 86400
    gap = gap.dropna()
    # Within a series administrations are <= 7 days apart, between series > 10 days.
    assert not gap.between(7, 10).any()
    n_series = tr.groupby("patient_id").size().sum() - (gap <= 7).sum()
    assert n_series == len(episodes)
    assert episodes["baseline_score"].between(4, 9).all()
    assert episodes["n_administrations"].between(1, 6).all()
    assert episodes["series_no"].between(1, 3).all()
    single = (episodes["n_administrations"] == 1).mean()
    assert single == pytest.approx(0.55, abs=0.04)


def test_expected_outcomes_are_consistent(episodes) -> None:
    resp = episodes[episodes["expected_responded"]]
    ev = resp[resp["expected_event"] == 1]
    assert (ev["expected_time_lower_days"] < ev["expected_time_upper_days"]).all()
    # Pain is observed back only after the true return time.
    assert (ev["expected_time_days"] > ev["true_return_days"]).all()
    assert (ev["expected_time_lower_days"] <= ev["true_return_days"]).all()
    assert set(resp["expected_censor_reason"]) <= {"returned", "retreated", "end_of_data"}
    assert np.isfinite(resp["expected_time_days"]).all()


def test_id_prefix_gives_new_patients_with_consistent_references(tmp_path):
    from pipeline.synth import write_delivery

    plain = write_delivery(tmp_path / "a", patients=20, seed=1)
    prefixed = write_delivery(tmp_path / "b", patients=20, seed=1, id_prefix="B")
    for name in ("patients", "treatments", "pain_assessments", "adverse_events"):
        a = pd.read_csv(plain / f"{name}.csv", dtype=str)
        b = pd.read_csv(prefixed / f"{name}.csv", dtype=str)
        assert (b["patient_id"] == "B" + a["patient_id"]).all()
        if "treatment_id" in a:
            assert (b["treatment_id"] == "B" + a["treatment_id"]).all()
