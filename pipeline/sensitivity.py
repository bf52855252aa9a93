"""Secondary analyses published beside the main results (docs/methods.md).

* proportional-hazards diagnostics of the main Cox model (R ``cox.zph``);
* spline dose–response curves for dose (mg/kg) and infusion length;
* interval censoring: pain is only seen at visits, so the Turnbull curve and a Weibull
  model on the (last relieved visit, first visit with pain back] bounds, with left
  truncation at the first relieved visit (an episode is only analysed if relief was seen);
* competing risks: re-treatment while still relieved competes with pain returning.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from pipeline.config import ModelSettings
from pipeline.models.competing import competing_causes, cumulative_incidence
from pipeline.models.cox import CoxResult
from pipeline.models.interval import fit_weibull_aft_interval, fit_weibull_interval, turnbull
from pipeline.models.ph_test import ph_test
from pipeline.models.splines import dose_response

log = logging.getLogger(__name__)

PH_ALPHA = 0.05
CAUSE_NAMES = {1: "pain returned", 2: "re-treated while relieved"}
SPLINE_VARIABLES = ("dose_mg_per_kg", "infusion_hours")
LOWER, UPPER, ENTRY = "time_lower_days", "time_upper_days", "entry_days"
TURNBULL_GRID_DAYS = 0.25
# Turnbull's EM grows with (distinct intervals) x (Turnbull intervals); above this many
# episodes the bounds go to a 1-day grid instead (6.3 s instead of ~70 s at 130 000
# episodes; docs/methods.md, "Interval censoring").
TURNBULL_FINE_MAX_EPISODES = 20_000
TURNBULL_COARSE_GRID_DAYS = 1.0
# The Weibull AFT fit (lifelines, autograd + SLSQP) costs ~0.5 ms per episode and
# iteration; above this many episodes it is fitted on a seeded simple random subsample
# (docs/methods.md, "Interval censoring"). Its coefficients are a sensitivity check
# beside the Cox model fitted on every episode, and 20 000 episodes keep their
# sampling error well below the between-model differences it is read for.
AFT_MAX_EPISODES = 20_000
AFT_SAMPLE_SEED = 2026


def ph_diagnostics(cox: CoxResult) -> pd.DataFrame:
    """Scaled-Schoenfeld score tests per term and global, flagged when p < 0.05."""
    table = ph_test(cox, transform="km")
    return table.assign(model="main", violated=table["p"] < PH_ALPHA)


def dose_responses(
    frame: pd.DataFrame, settings: ModelSettings, categorical: list[str]
) -> pd.DataFrame:
    """Adjusted HR across dose and infusion length (natural splines, 3 df) vs their medians."""
    curves = []
    for variable in SPLINE_VARIABLES:
        adjust = [c for c in settings.covariates if c != variable]
        curve = dose_response(
            frame,
            "time_days",
            "event",
            variable,
            adjust=adjust,
            categorical=categorical,
            reference={"route": "IV"},
        )
        curves.append(curve[["value", "hr", "hr_lower", "hr_upper"]].assign(variable=variable))
    return pd.concat(curves, ignore_index=True)


def interval_censored(
    frame: pd.DataFrame, settings: ModelSettings, categorical: list[str]
) -> dict[str, pd.DataFrame]:
    """Turnbull NPMLE overall, Weibull per route, Weibull PH-scale coefficients
    (the AFT regression on at most ``AFT_MAX_EPISODES`` episodes, see ``aft_sample``)."""
    data = frame.assign(
        **{ENTRY: (frame["response_at"] - frame["origin"]).dt.total_seconds() / 86400}
    )
    # Turnbull's EM costs (distinct intervals) x (Turnbull intervals): widen each bound outwards
    # to a 6-hour grid. A wider interval is still a valid (conservative) bound, and the
    # number of distinct intervals stops growing with the cohort.
    grid = turnbull_grid_days(len(data))
    coarse = data.assign(
        **{
            LOWER: np.floor(data[LOWER] / grid) * grid,
            UPPER: np.ceil(data[UPPER] / grid) * grid,
        }
    )
    curve = (
        turnbull(coarse, LOWER, UPPER)
        .rename(columns={"group": "group_value"})
        .assign(grouping="all")
    )
    weibull = pd.concat(
        [
            fit_weibull_interval(data, LOWER, UPPER).assign(grouping="all"),
            fit_weibull_interval(data, LOWER, UPPER, group="route").assign(grouping="route"),
        ],
        ignore_index=True,
    ).rename(columns={"group": "group_value"})
    aft = fit_weibull_aft_interval(
        aft_sample(data),
        LOWER,
        UPPER,
        list(settings.covariates),
        categorical=categorical,
        reference={"route": "IV"},
        entry=ENTRY,
    )
    aft = aft.loc[aft["ph_coef"].notna()]
    return {
        "turnbull": curve[["grouping", "group_value", "time", "survival"]],
        "interval_weibull": weibull,
        "interval_cox": aft[["term", "ph_coef", "ph_se", "ph_lower", "ph_upper", "p"]],
    }


def turnbull_grid_days(episodes: int) -> float:
    """The grid the Turnbull bounds are widened to: 6 hours, or 1 day for large cohorts."""
    return (
        TURNBULL_GRID_DAYS if episodes <= TURNBULL_FINE_MAX_EPISODES else TURNBULL_COARSE_GRID_DAYS
    )


def aft_sample(data: pd.DataFrame, limit: int = AFT_MAX_EPISODES) -> pd.DataFrame:
    """All rows when there are at most ``limit``; else a seeded simple random sample of
    ``limit`` rows (the same rows for the same episodes, so re-runs give the same fit)."""
    if len(data) <= limit:
        return data
    log.info("interval-censored AFT on a random %d of %d episodes", limit, len(data))
    return data.sample(n=limit, random_state=AFT_SAMPLE_SEED).sort_index()


def competing_risks(frame: pd.DataFrame, settings: ModelSettings) -> pd.DataFrame:
    """Cumulative incidence of each outcome at the landmark days (Aalen–Johansen)."""
    data = frame.assign(cause=competing_causes(frame)).dropna(subset=["cause"])
    _, marks = cumulative_incidence(data, "time_days", "cause", horizons=settings.landmarks_days)
    marks = marks.loc[marks["cause"].isin(CAUSE_NAMES)]
    return marks.assign(cause=marks["cause"].map(CAUSE_NAMES)).rename(columns={"horizon": "day"})[
        ["cause", "day", "cif", "lower", "upper"]
    ]
