"""Derivation on tiny hand-made frames; every expected value is worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.config import OutcomeDefinition
from pipeline.episodes import analysis_frame, derive_episodes

T0 = pd.Timestamp("2024-03-01 09:00")


def ts(days: float, hours: float = 0) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=days, hours=hours)


def patients(*keys: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_key": list(keys),
            "sex": "F",
            "birth_year": 1970,
            "primary_condition": "CRPS",
            "comorbidities": ["F32.9;I10"] + [""] * (len(keys) - 1),
            "site_id": "S01",
        }
    )


def treatments(rows: list[tuple[str, float, float, str]]) -> pd.DataFrame:
    """rows: (patient, day, duration_min, route); 35 mg for 70 kg = 0.5 mg/kg."""
    return pd.DataFrame(
        {
            "treatment_id": [f"T{i}" for i in range(len(rows))],
            "patient_key": [r[0] for r in rows],
            "administered_at": [ts(r[1]) for r in rows],
            "duration_min": [r[2] for r in rows],
            "route": [r[3] for r in rows],
            "dose_mg": 35.0,
            "weight_kg": 70.0,
        }
    )


def scores(rows: list[tuple[str, float, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "assessment_id": [f"A{i}" for i in range(len(rows))],
            "patient_key": [r[0] for r in rows],
            "assessed_at": [ts(r[1]) for r in rows],
            "pain_score": [r[2] for r in rows],
        }
    )


def test_responder_whose_pain_returns_has_event_at_the_return_visit():
    # Baseline 8 two days before; single 60-min IV infusion on day 0 (origin 10:00).
    # Relieved (<= 5.6) on days 1, 3, 6; score 7 on day 9 = pain back.
    ep = derive_episodes(
        patients("p1"),
        treatments([("p1", 0, 60, "IV")]),
        scores(
            [("p1", -2, 8), ("p1", 1, 4), ("p1", 3, 5), ("p1", 6, 5), ("p1", 9, 7), ("p1", 12, 8)]
        ),
    ).iloc[0]
    hour = 1 / 24
    assert ep.baseline_score == 8
    assert ep.responded and ep.event == 1
    assert ep.time_days == pytest.approx(9 - hour)
    assert ep.time_lower_days == pytest.approx(6 - hour)
    assert ep.time_upper_days == pytest.approx(9 - hour)
    assert ep.time_mid_days == pytest.approx(7.5 - hour)
    assert ep.censor_reason == "returned"
    assert pd.isna(ep.exclusion)
    assert ep.n_comorbidities == 2 and ep.age == 54
    assert ep.dose_mg_per_kg == pytest.approx(0.5)


def test_relief_never_lost_is_censored_at_last_relieved_visit():
    ep = derive_episodes(
        patients("p1"),
        treatments([("p1", 0, 0, "IM")]),
        scores([("p1", -1, 10), ("p1", 2, 3), ("p1", 20, 7)]),  # 7 = exactly 30 % below 10
    ).iloc[0]
    assert ep.event == 0 and ep.responded
    assert ep.time_days == pytest.approx(20)
    assert pd.isna(ep.time_upper_days)
    assert ep.censor_reason == "end_of_data"


def test_non_responder_is_excluded_but_kept():
    ep = derive_episodes(
        patients("p1"),
        treatments([("p1", 0, 40, "IV")]),
        scores([("p1", -3, 6), ("p1", 1, 5), ("p1", 4, 6)]),  # 5 is only 17 % below 6
    ).iloc[0]
    assert not ep.responded and ep.exclusion == "non_responder"
    assert pd.isna(ep.time_days)


def test_missing_baseline_and_window():
    # Baseline 15 days before is outside the 14-day window.
    ep = derive_episodes(
        patients("p1"), treatments([("p1", 0, 40, "IV")]), scores([("p1", -15, 8), ("p1", 1, 2)])
    ).iloc[0]
    assert ep.exclusion == "no_baseline"
    wider = OutcomeDefinition(baseline_window_days=20)
    ep = derive_episodes(
        patients("p1"),
        treatments([("p1", 0, 40, "IV")]),
        scores([("p1", -15, 8), ("p1", 1, 2)]),
        wider,
    ).iloc[0]
    assert ep.baseline_score == 8 and ep.responded


def test_series_grouping_and_retreatment_censoring():
    # Infusions on days 0, 3, 9 (gaps <= 7 days -> one series of 3), then day 30 a new single.
    # Series 1 origin = day 9 + 4 h. Relieved on day 12 and 25, new series on day 30 while
    # relieved -> censored 'retreated' at the day-25 visit. Visits after day 30 belong to series 2.
    tr = treatments(
        [("p1", 0, 240, "IV"), ("p1", 3, 240, "IV"), ("p1", 9, 240, "IV"), ("p1", 30, 5, "IN")]
    )
    sc = scores([("p1", -1, 9), ("p1", 12, 3), ("p1", 25, 4), ("p1", 28, 8), ("p1", 31, 8)])
    eps = derive_episodes(patients("p1"), tr, sc).set_index("series_no")
    first, second = eps.loc[1], eps.loc[2]
    assert first.n_administrations == 3 and bool(first.is_series)
    assert first.origin == ts(9, 4)
    assert first.responded and first.event == 1  # day 28 score 8 is back before day 30
    assert first.time_days == pytest.approx(28 - 9 - 4 / 24)
    assert second.baseline_score == 8  # day 28 is within 14 days before day 30
    assert not bool(second.is_series) and second.route == "IN"
    assert second.exclusion == "non_responder"


def test_retreated_while_relieved():
    tr = treatments([("p1", 0, 0, "IM"), ("p1", 20, 0, "IM")])
    sc = scores([("p1", -1, 8), ("p1", 5, 2), ("p1", 15, 3), ("p1", 22, 2)])
    first = derive_episodes(patients("p1"), tr, sc).iloc[0]
    assert first.event == 0 and first.censor_reason == "retreated"
    assert first.time_days == pytest.approx(15)


def test_absolute_rule_and_analysis_frame():
    rule = OutcomeDefinition(response_rule="absolute", absolute_threshold=2)
    sc = scores([("p1", -1, 4), ("p1", 1, 2), ("p1", 2, 3)])  # 2 points = relief; 3 = back
    ep = derive_episodes(patients("p1"), treatments([("p1", 0, 0, "IM")]), sc, rule)
    assert ep.iloc[0].event == 1 and ep.iloc[0].time_days == pytest.approx(2)
    frame = analysis_frame(ep)
    assert len(frame) == 1 and frame.iloc[0].infusion_hours == 0
