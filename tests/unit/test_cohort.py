"""Cohort filters on a tiny hand-made episodes frame."""

from __future__ import annotations

from datetime import date

import pandas as pd

from pipeline.analysis_params import CohortFilter
from pipeline.cohort import apply_cohort, follow_up_days

EPISODES = pd.DataFrame(
    {
        "patient_key": ["p1", "p1", "p2", "p3"],
        "series_no": [1, 2, 1, 1],
        "series_start": pd.to_datetime(["2024-01-05", "2024-03-01", "2024-06-30", "2024-12-31"]),
        "origin": pd.to_datetime(["2024-01-06", "2024-03-02", "2024-07-01", "2025-01-01"]),
        "route": ["IV", "IV", "IM", None],
        "primary_condition": ["CRPS", "CRPS", "fibromyalgia", "CRPS"],
        "site_id": ["s1", "s1", "s2", "s1"],
        "age": [40, 40, 17, 70],
    }
)
ASSESSMENTS = pd.DataFrame(
    {
        "patient_key": ["p1", "p1", "p1", "p2"],
        "assessed_at": pd.to_datetime(["2024-01-20", "2024-02-25", "2024-03-10", "2024-07-04"]),
    }
)


def keys(frame: pd.DataFrame) -> list[tuple[str, int]]:
    return list(zip(frame["patient_key"], frame["series_no"], strict=True))


def test_empty_filter_keeps_everything():
    assert len(apply_cohort(EPISODES, CohortFilter())) == 4


def test_date_range_is_inclusive_of_both_days():
    kept = apply_cohort(
        EPISODES, CohortFilter(date_from=date(2024, 3, 1), date_to=date(2024, 6, 30))
    )
    assert keys(kept) == [("p1", 2), ("p2", 1)]


def test_routes_conditions_sites_are_set_membership():
    assert keys(apply_cohort(EPISODES, CohortFilter(routes=("IM",)))) == [("p2", 1)]
    assert len(apply_cohort(EPISODES, CohortFilter(conditions=("CRPS",), sites=("s1",)))) == 3
    assert apply_cohort(EPISODES, CohortFilter(routes=("PO",))).empty


def test_age_bounds_are_inclusive_and_drop_unknown_ages():
    frame = EPISODES.assign(age=[40, None, 17, 70])
    assert keys(apply_cohort(frame, CohortFilter(age_min=18, age_max=70))) == [("p1", 1), ("p3", 1)]


def test_follow_up_days_stop_at_the_next_series():
    days = follow_up_days(EPISODES, ASSESSMENTS)
    # p1 series 1: last visit before series 2 starts is 2024-02-25, 50 days after origin
    assert list(days) == [50.0, 8.0, 3.0, 0.0]
    kept = apply_cohort(EPISODES, CohortFilter(min_follow_up_days=5), ASSESSMENTS)
    assert keys(kept) == [("p1", 1), ("p1", 2)]


def test_injection_text_is_only_a_value_that_matches_nothing():
    evil = "x'); DROP TABLE core__patients; --"
    assert apply_cohort(EPISODES, CohortFilter(conditions=(evil,), sites=(evil,))).empty
