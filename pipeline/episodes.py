"""Derive: treatment series, baseline, response, and time until pain returns.

The outcome definitions are those of design.md (all configurable through
``OutcomeDefinition``):

* administrations with gaps of at most ``series_gap_days`` (end of one to start of the
  next) form one series; time zero is the end of the series' last administration;
* baseline is the last score in the ``baseline_window_days`` before the series starts;
* a follow-up visit counts as *relieved* when the score is at least 30 % below baseline
  (IMMPACT "moderately important"; Dworkin et al., J Pain 2008;9:105-121), or by the
  absolute rule (≥ 2 points) when chosen;
* pain *returns* at the first follow-up after the first relieved one that is not
  relieved. The true return lies in (last relieved visit, that visit]: both bounds are
  kept for interval-censored models; right-censored models use the visit at which the
  return was observed, and the midpoint is kept for a sensitivity analysis;
* without a return the episode is censored at its last relieved visit, with reason
  ``retreated`` when a new series started while still relieved, else ``end_of_data``.

Everything is vectorised over patients (groupby / merge_asof), no Python loop per row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.config import OutcomeDefinition
from pipeline.schema import EPISODE_COLUMNS, PATIENT_KEY
from pipeline.strata import with_labels

DAY = pd.Timedelta(days=1)
EP = [PATIENT_KEY, "series_no"]


def derive_episodes(
    patients: pd.DataFrame,
    treatments: pd.DataFrame,
    assessments: pd.DataFrame,
    outcome: OutcomeDefinition | None = None,
) -> pd.DataFrame:
    """One row per treatment series with its outcome (columns: schema.EPISODE_COLUMNS)."""
    outcome = outcome or OutcomeDefinition()
    patients = _typed(patients, (), ("birth_year",))
    treatments = _typed(treatments, ("administered_at",), ("duration_min", "dose_mg", "weight_kg"))
    assessments = _typed(assessments, ("assessed_at",), ("pain_score",))
    keys, (patients, treatments, assessments) = _integer_keys(patients, treatments, assessments)
    series = build_series(treatments, outcome.series_gap_days)
    if series.empty:
        return pd.DataFrame(columns=list(EPISODE_COLUMNS))
    series = attach_baseline(series, assessments, outcome.baseline_window_days)
    series = attach_outcome(series, assessments, outcome)
    series = attach_patient(series, patients)
    series[PATIENT_KEY] = keys[series[PATIENT_KEY].to_numpy()]
    return series[list(EPISODE_COLUMNS)].reset_index(drop=True)


def _typed(
    frame: pd.DataFrame, timestamps: tuple[str, ...], numbers: tuple[str, ...]
) -> pd.DataFrame:
    """Timestamp and number columns as such even when no row gives them a type.

    The incremental derive reads a few patients' rows; a patient with no assessments
    yields an empty frame whose columns pandas types as ``object``, which the
    ``merge_asof`` on ``assessed_at`` would refuse. Typed columns pass unchanged.
    """
    fixes = {
        c: pd.to_datetime(frame[c])
        for c in timestamps
        if not pd.api.types.is_datetime64_any_dtype(frame[c])
    }
    fixes |= {
        c: pd.to_numeric(frame[c]).astype("float64") for c in numbers if frame[c].dtype == object
    }
    return frame.assign(**fixes) if fixes else frame


def _integer_keys(*frames: pd.DataFrame) -> tuple[np.ndarray, list[pd.DataFrame]]:
    """Replace the (64-character) patient keys by their rank among all keys.

    Sorting, grouping and merging on integers is several times faster than on strings
    (at 10^5 patients the visit-level sorts and merges dominate the derive stage); the
    rank keeps the keys' sort order, so the output is row for row the same.
    Returns the sorted distinct keys (to map back) and the recoded frames.
    """
    values = [f[PATIENT_KEY].to_numpy() for f in frames]
    keys = np.sort(pd.unique(np.concatenate(values)))
    index = pd.Index(keys)
    recoded = [
        f.assign(**{PATIENT_KEY: index.get_indexer(v)}) for f, v in zip(frames, values, strict=True)
    ]
    return keys, recoded


def build_series(treatments: pd.DataFrame, gap_days: float) -> pd.DataFrame:
    """Group each patient's administrations into series."""
    t = treatments.sort_values([PATIENT_KEY, "administered_at"], kind="stable").copy()
    t["ended_at"] = t["administered_at"] + pd.to_timedelta(t["duration_min"].fillna(0), unit="min")
    previous_end = t.groupby(PATIENT_KEY)["ended_at"].shift()
    gap = (t["administered_at"] - previous_end) / DAY
    t["series_no"] = (previous_end.isna() | (gap > gap_days)).groupby(t[PATIENT_KEY]).cumsum()
    t["mg_per_kg"] = t["dose_mg"] / t["weight_kg"]
    grouped = t.groupby(EP)
    series = grouped.agg(
        series_start=("administered_at", "min"),
        origin=("ended_at", "max"),
        n_administrations=("administered_at", "size"),
        dose_mg_per_kg=("mg_per_kg", "mean"),
        infusion_min=("duration_min", "mean"),
        n_routes=("route", "nunique"),
        first_route=("route", "first"),
    ).reset_index()
    series["route"] = series["first_route"].where(series["n_routes"] == 1, "mixed")
    series["is_series"] = series["n_administrations"] > 1
    series["next_start"] = series.groupby(PATIENT_KEY)["series_start"].shift(-1)
    return series.drop(columns=["n_routes", "first_route"])


def attach_baseline(
    series: pd.DataFrame, assessments: pd.DataFrame, window_days: float
) -> pd.DataFrame:
    """Last score strictly before the series starts, within the window."""
    scores = assessments.dropna(subset=["assessed_at", "pain_score"]).sort_values("assessed_at")
    left = series.sort_values("series_start")
    merged = pd.merge_asof(
        left,
        scores[[PATIENT_KEY, "assessed_at", "pain_score"]],
        left_on="series_start",
        right_on="assessed_at",
        by=PATIENT_KEY,
        direction="backward",
        allow_exact_matches=False,
        tolerance=pd.Timedelta(days=window_days),
    )
    merged = merged.rename(columns={"pain_score": "baseline_score"}).drop(columns="assessed_at")
    return merged.sort_values(EP).reset_index(drop=True)


def is_relieved(baseline: pd.Series, score: pd.Series, outcome: OutcomeDefinition) -> pd.Series:
    """Whether a follow-up score counts as relief against the baseline."""
    if outcome.response_rule == "absolute":
        return (baseline - score) >= outcome.absolute_threshold - 1e-9
    reduction = (baseline - score) / baseline.where(baseline > 0)
    return (reduction >= outcome.response_threshold - 1e-9).fillna(False)


def attach_outcome(
    series: pd.DataFrame, assessments: pd.DataFrame, outcome: OutcomeDefinition
) -> pd.DataFrame:
    """Response, pain return and censoring from the follow-up visits of each series."""
    visits = series[[*EP, "origin", "next_start", "baseline_score"]].merge(
        assessments[[PATIENT_KEY, "assessed_at", "pain_score"]].dropna(), on=PATIENT_KEY
    )
    in_window = (visits["assessed_at"] > visits["origin"]) & (
        visits["next_start"].isna() | (visits["assessed_at"] < visits["next_start"])
    )
    visits = visits.loc[in_window].sort_values([*EP, "assessed_at"], kind="stable")
    visits["relieved"] = is_relieved(visits["baseline_score"], visits["pain_score"], outcome)
    responded_so_far = visits.groupby(EP)["relieved"].cummax()
    visits["returned"] = responded_so_far & ~visits["relieved"]
    first_return = (
        visits.loc[visits["returned"]].groupby(EP)["assessed_at"].min().rename("return_at")
    )
    visits = visits.merge(first_return, on=EP, how="left")
    before_return = visits["return_at"].isna() | (visits["assessed_at"] < visits["return_at"])
    relieved = visits.loc[visits["relieved"] & before_return].groupby(EP)["assessed_at"]
    summary = pd.concat(
        [
            visits.groupby(EP)["assessed_at"].size().rename("n_follow_up"),
            relieved.min().rename("response_at"),
            relieved.max().rename("last_relieved_at"),
            first_return,
        ],
        axis=1,
    ).reset_index()
    out = series.merge(summary, on=EP, how="left")
    out["n_follow_up"] = out["n_follow_up"].fillna(0).astype(int)
    out["responded"] = out["response_at"].notna()
    out["event"] = out["return_at"].notna().astype(int)
    lower = (out["last_relieved_at"] - out["origin"]) / DAY
    upper = (out["return_at"] - out["origin"]) / DAY
    out["time_lower_days"] = lower.where(out["responded"])
    out["time_upper_days"] = upper
    out["time_days"] = upper.where(out["event"] == 1, lower).where(out["responded"])
    out["time_mid_days"] = ((lower + upper) / 2).where(out["event"] == 1, out["time_days"])
    out["censor_reason"] = np.select(
        [~out["responded"], out["event"] == 1, out["next_start"].notna()],
        [None, "returned", "retreated"],
        default="end_of_data",
    )
    out["exclusion"] = np.select(
        [
            out["baseline_score"].isna(),
            (out["baseline_score"] <= 0) & (outcome.response_rule == "relative"),
            out["n_follow_up"] == 0,
            ~out["responded"],
        ],
        ["no_baseline", "no_baseline_pain", "no_follow_up", "non_responder"],
        default=None,
    )
    return out


def attach_patient(series: pd.DataFrame, patients: pd.DataFrame) -> pd.DataFrame:
    """Patient-level covariates: sex, age at series start, condition, comorbidity count."""
    p = patients[
        [PATIENT_KEY, "sex", "birth_year", "primary_condition", "comorbidities", "site_id"]
    ]
    out = series.merge(p, on=PATIENT_KEY, how="left")
    out["age"] = out["series_start"].dt.year - out["birth_year"]
    codes = out["comorbidities"].fillna("").astype(str)
    out["n_comorbidities"] = codes.str.count(r"[^;\s][^;]*").astype(int)
    return out


def analysis_frame(episodes: pd.DataFrame) -> pd.DataFrame:
    """Responders with a usable time: the population of the duration analysis."""
    usable = episodes["exclusion"].isna() & episodes["time_days"].notna()
    return with_labels(episodes.loc[usable])
