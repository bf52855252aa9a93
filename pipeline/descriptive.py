"""Cohort attrition and response rates: the denominators behind the survival results."""

from __future__ import annotations

import pandas as pd

STEPS = (
    ("treatment series (episodes) in core", None),
    ("with a baseline score in the window", "no_baseline"),
    ("with baseline pain above 0", "no_baseline_pain"),
    ("with at least one follow-up visit", "no_follow_up"),
    ("responders: in the duration analysis", "non_responder"),
)


def attrition(episodes: pd.DataFrame) -> pd.DataFrame:
    """How many episodes survive each inclusion step, and how many each step drops."""
    remaining = len(episodes)
    rows = []
    for step, (description, reason) in enumerate(STEPS, start=1):
        excluded = int((episodes["exclusion"] == reason).sum()) if reason else 0
        remaining -= excluded
        rows.append(
            {"step": step, "description": description, "remaining": remaining, "excluded": excluded}
        )
    return pd.DataFrame(rows)


def response_rates(episodes: pd.DataFrame, groupings: tuple[str, ...]) -> pd.DataFrame:
    """Responders among episodes that could respond (baseline pain and follow-up present)."""
    eligible = episodes["exclusion"].isna() | (episodes["exclusion"] == "non_responder")
    frames = []
    for grouping in ("all", *groupings):
        key = (
            pd.Series("all", index=episodes.index)
            if grouping == "all"
            else episodes[grouping].astype(str)
        )
        table = (
            pd.DataFrame(
                {
                    "group_value": key,
                    "episode": 1,
                    "eligible": eligible.astype(int),
                    "responder": (eligible & episodes["responded"].astype(bool)).astype(int),
                }
            )
            .groupby("group_value")
            .sum()
            .reset_index()
            .rename(
                columns={
                    "episode": "episodes",
                    "eligible": "with_baseline",
                    "responder": "responders",
                }
            )
        )
        table["response_rate"] = table["responders"] / table["with_baseline"].where(
            table["with_baseline"] > 0
        )
        frames.append(table.assign(grouping=grouping))
    return pd.concat(frames, ignore_index=True)


def adverse_event_rates(treatments: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Share of administrations with each adverse event, by route and dose band (mg/kg)."""
    from pipeline.strata import DOSE_BANDS, band

    if treatments.empty:
        return pd.DataFrame(
            columns=["route", "dose_band", "event", "administrations", "with_event", "rate"]
        )
    admin = treatments[["treatment_id", "route"]].assign(
        dose_band=band(treatments["dose_mg"] / treatments["weight_kg"], DOSE_BANDS, right=False)
    )
    sizes = admin.groupby(["route", "dose_band"]).size().rename("administrations")
    hit = events[["treatment_id", "event"]].drop_duplicates().merge(admin, on="treatment_id")
    counts = hit.groupby(["route", "dose_band", "event"]).size().rename("with_event").reset_index()
    out = counts.merge(sizes.reset_index(), on=["route", "dose_band"])
    out["rate"] = out["with_event"] / out["administrations"]
    return out.sort_values(["event", "route", "dose_band"]).reset_index(drop=True)
