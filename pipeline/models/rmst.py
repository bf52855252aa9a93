"""Restricted mean survival time (area under the Kaplan-Meier curve to a horizon).

References
----------
Royston P, Parmar MKB. Restricted mean survival time: an alternative to the
hazard ratio for the design and analysis of randomized trials with a
time-to-event outcome. BMC Med Res Methodol 2013;13:152.
Uno H et al. Moving beyond the hazard ratio in quantifying the between-group
difference in survival analysis. J Clin Oncol 2014;32:2380-2385.
Klein JP, Moeschberger ML. Survival Analysis, 2nd ed. 2003, section 4.5
(variance of the restricted mean).
R: ``survRM2::rmst2`` and ``print(survfit(...), rmean = horizon)``
(``survival:::survmean``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from pipeline.models.km import _km_table, group_labels, prepare_survival_frame

RMST_COLUMNS = ("group", "horizon", "rmst", "se", "lower", "upper")
RMST_DIFF_COLUMNS = ("group", "reference", "difference", "lower", "upper", "p")


def _rmst_one(time: np.ndarray, event: np.ndarray, horizon: float) -> tuple[float, float]:
    """RMST and its SE for one sample, exactly as ``survival:::survmean`` / ``survRM2``.

    RMST = sum of rectangles under the step curve up to ``horizon``;
    Var = sum over event times t_i <= horizon of A_i^2 d_i / (n_i (n_i - d_i)),
    where A_i is the area under the curve from t_i to the horizon (terms with
    n_i = d_i are taken as 0, as R does).
    """
    table = _km_table(time, event)
    table = table[(table["time"] <= horizon) & (table["events"] > 0)]
    t = table["time"].to_numpy()
    s = table["survival"].to_numpy()
    n = table["at_risk"].to_numpy(dtype=float)
    d = table["events"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        hh = np.where(n - d == 0, 0.0, d / (n * (n - d)))
    widths = np.diff(np.concatenate(([0.0], t, [horizon])))
    heights = np.concatenate(([1.0], s))
    rectangles = widths * heights
    area_after = np.cumsum(rectangles[::-1])[::-1][1:]  # area from t_i to the horizon
    return float(rectangles.sum()), float(np.sqrt(np.sum(area_after**2 * hh)))


def rmst(
    df: pd.DataFrame,
    time: str,
    event: str,
    group: str | None = None,
    horizon: float = 90.0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Restricted mean survival time to ``horizon`` per group, with a normal CI.

    Matches R ``survRM2::rmst2(time, status, arm, tau = horizon)`` (per arm)
    and ``print(survfit(Surv(time, event) ~ group), rmean = horizon)``.
    The horizon may lie beyond a group's last follow-up (the curve is then
    extended flat, as R does); the caller should choose one within follow-up.
    Returns one row per group: group, horizon, rmst, se, lower, upper.
    """
    data = prepare_survival_frame(df, time, event, [group] if group else [])
    labels = group_labels(data, group)
    q = norm.ppf(1 - alpha / 2)
    rows = []
    for label in sorted(labels.unique()):
        sub = data[labels == label]
        est, se = _rmst_one(
            sub[time].to_numpy(dtype=float), sub[event].to_numpy(dtype=float), horizon
        )
        rows.append((label, float(horizon), est, se, est - q * se, est + q * se))
    return pd.DataFrame(rows, columns=list(RMST_COLUMNS))


def rmst_difference(
    df: pd.DataFrame,
    time: str,
    event: str,
    group: str,
    horizon: float,
    reference: str | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Difference in RMST (group minus reference) with a Wald CI and two-sided p.

    The groups are independent, so Var(difference) = se_1^2 + se_0^2, as the
    unadjusted contrast of ``survRM2::rmst2`` ("RMST (arm=1)-(arm=0)").
    The reference is ``reference`` or the first group in sorted order; one row
    per other group.
    """
    table = rmst(df, time, event, group, horizon, alpha).set_index("group")
    ref = table.index[0] if reference is None else str(reference)
    if ref not in table.index:
        raise ValueError(f"reference {ref!r} is not a level of {group!r} ({list(table.index)})")
    q = norm.ppf(1 - alpha / 2)
    rows = []
    for label, row in table.drop(index=ref).iterrows():
        diff = row["rmst"] - table.at[ref, "rmst"]
        se = float(np.hypot(row["se"], table.at[ref, "se"]))
        p = float(2 * norm.sf(abs(diff) / se)) if se > 0 else float("nan")
        rows.append((label, ref, diff, diff - q * se, diff + q * se, p))
    return pd.DataFrame(rows, columns=list(RMST_DIFF_COLUMNS))
