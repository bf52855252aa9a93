"""Apply an analyst's ``CohortFilter`` to an episodes frame.

The filter is a typed value (dates, numbers, tuples of names) and is applied with pandas
comparisons and set membership on the derived episodes: no filter value ever becomes SQL
text, so a value like ``"x'); DROP TABLE ..."`` can only fail to match.
"""

from __future__ import annotations

import pandas as pd

from pipeline.analysis_params import CohortFilter
from pipeline.schema import PATIENT_KEY

DAY = pd.Timedelta(days=1)


def follow_up_days(episodes: pd.DataFrame, assessments: pd.DataFrame) -> pd.Series:
    """Days from each episode's origin to its last pain assessment before the next series.

    0 when there is no assessment after the origin. Indexed like ``episodes``.
    """
    ep = episodes[[PATIENT_KEY, "series_no", "series_start", "origin"]].copy()
    ep["row"] = range(len(ep))
    ep = ep.sort_values([PATIENT_KEY, "series_no"], kind="stable")
    ep["next_start"] = ep.groupby(PATIENT_KEY)["series_start"].shift(-1)
    visits = ep.merge(
        assessments[[PATIENT_KEY, "assessed_at"]].dropna(), on=PATIENT_KEY, how="inner"
    )
    after = visits["assessed_at"] > visits["origin"]
    before_next = visits["next_start"].isna() | (visits["assessed_at"] < visits["next_start"])
    last = visits.loc[after & before_next].groupby("row")["assessed_at"].max()
    ep = ep.set_index("row").sort_index()
    days = ((last.reindex(ep.index) - ep["origin"]) / DAY).fillna(0.0)
    return pd.Series(days.to_numpy(), index=episodes.index, name="follow_up_days")


def cohort_mask(
    episodes: pd.DataFrame, cohort: CohortFilter, assessments: pd.DataFrame | None = None
) -> pd.Series:
    """True for the episodes the cohort keeps (all of them for the empty filter).

    ``assessments`` (core pain assessments) is needed only for a minimum follow-up.
    """
    keep = pd.Series(True, index=episodes.index)
    start = pd.to_datetime(episodes["series_start"])
    if cohort.date_from is not None:
        keep &= start >= pd.Timestamp(cohort.date_from)
    if cohort.date_to is not None:
        keep &= start < pd.Timestamp(cohort.date_to) + DAY  # the whole last day
    for column, allowed in (
        ("route", cohort.routes),
        ("primary_condition", cohort.conditions),
        ("site_id", cohort.sites),
    ):
        if allowed:
            keep &= episodes[column].astype("string").isin(list(allowed)).fillna(False)
    age = pd.to_numeric(episodes["age"], errors="coerce")
    if cohort.age_min is not None:
        keep &= (age >= cohort.age_min).fillna(False)
    if cohort.age_max is not None:
        keep &= (age <= cohort.age_max).fillna(False)
    if cohort.min_follow_up_days > 0:
        if assessments is None:
            raise ValueError("a minimum follow-up needs the pain assessments")
        keep &= follow_up_days(episodes, assessments) >= cohort.min_follow_up_days
    return keep.astype(bool)


def apply_cohort(
    episodes: pd.DataFrame, cohort: CohortFilter, assessments: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The episodes in the cohort, index reset."""
    return episodes.loc[cohort_mask(episodes, cohort, assessments)].reset_index(drop=True)
