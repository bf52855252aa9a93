"""What the episode derivation must produce from a synthetic delivery.

Computed from the simulated follow-up visits with the default outcome definition
(30 % relative reduction), so derivation tests can compare row by row instead of only
checking that recovered hazard ratios look plausible.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.synth_episodes import MIN_PER_DAY


def expected_outcomes(
    episodes: pd.DataFrame, follow_ups: pd.DataFrame, threshold: float = 0.30
) -> pd.DataFrame:
    """Add expected derived outcome columns to ``episodes``.

    ``episodes`` needs ``episode``, ``baseline_score``, ``origin_min``,
    ``has_next_series``; ``follow_ups`` needs ``episode``, ``at_min``, ``score`` for every
    assessment strictly after the origin and strictly before the next series.
    """
    fu = follow_ups.sort_values(["episode", "at_min"], kind="stable").reset_index(drop=True)
    ep = episodes.set_index("episode")
    b = ep["baseline_score"].to_numpy()[fu["episode"].to_numpy()]
    origin = ep["origin_min"].to_numpy()[fu["episode"].to_numpy()]
    fu["t"] = (fu["at_min"].to_numpy() - origin) / MIN_PER_DAY
    fu["relieved"] = (b - fu["score"].to_numpy()) / b >= threshold
    seen = fu.groupby("episode")["relieved"].cummax()
    first_rel = fu[fu["relieved"]].groupby("episode")["t"].first()
    ret = fu[seen & ~fu["relieved"]].groupby("episode")["t"].first()
    fu["before_return"] = fu["t"] < fu["episode"].map(ret).fillna(np.inf)
    last_rel = fu[fu["relieved"] & fu["before_return"]].groupby("episode")["t"].last()
    n_fu = fu.groupby("episode").size()

    out = episodes.copy()
    key = out["episode"]
    out["n_follow_ups"] = key.map(n_fu).fillna(0).astype(np.int64)
    out["expected_responded"] = key.map(first_rel).notna()
    out["expected_response_days"] = key.map(first_rel)
    out["expected_event"] = key.map(ret).notna().astype(np.int64)
    out["expected_time_lower_days"] = key.map(last_rel)
    out["expected_time_upper_days"] = key.map(ret)
    out["expected_time_days"] = out["expected_time_upper_days"].where(
        out["expected_event"] == 1, out["expected_time_lower_days"]
    )
    out["expected_time_mid_days"] = (
        (out["expected_time_lower_days"] + out["expected_time_upper_days"]) / 2
    ).where(out["expected_event"] == 1, out["expected_time_days"])
    reason = np.where(
        out["expected_event"] == 1,
        "returned",
        np.where(out["has_next_series"], "retreated", "end_of_data"),
    )
    out["expected_censor_reason"] = np.where(out["expected_responded"], reason, None)
    out["expected_exclusion"] = np.where(
        out["n_follow_ups"] == 0,
        "no_follow_up",
        np.where(out["expected_responded"], None, "non_responder"),
    )
    return out
