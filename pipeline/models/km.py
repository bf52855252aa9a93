"""Kaplan-Meier survival curves with log-log confidence intervals.

The estimate and its Greenwood standard error come from statsmodels'
``SurvfuncRight``; this module only adds what R's ``survival::survfit`` reports
and statsmodels does not: the pointwise log-log band (``conf.type="log-log"``),
the curve at every distinct time (censoring times included), and median
confidence limits read off the band the way ``quantile.survfit`` does.

References
----------
Kaplan EL, Meier P. Nonparametric estimation from incomplete observations.
JASA 1958;53:457-481.
Greenwood M. The natural duration of cancer. Rep Public Health Med Subj 1926;33.
Kalbfleisch JD, Prentice RL. The Statistical Analysis of Failure Time Data, 2nd ed.
2002, section 1.4 (log-log interval).
Brookmeyer R, Crowley J. A confidence interval for the median survival time.
Biometrics 1982;38:29-41 (median limits from the pointwise band).
Therneau TM. survival: R package, ``survfit.formula`` / ``quantile.survfit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.duration.survfunc import SurvfuncRight

ALL_GROUP = "all"
CURVE_COLUMNS = ("group", "time", "survival", "lower", "upper", "at_risk", "events", "censored")
SUMMARY_COLUMNS = ("group", "n", "events", "median", "median_lower", "median_upper")
LANDMARK_COLUMNS = ("group", "day", "survival", "lower", "upper")

# R's quantile.survfit compares survival with the probability at this tolerance.
_R_TOLERANCE = float(np.sqrt(np.finfo(float).eps))


@dataclass(frozen=True)
class KMResult:
    """Kaplan-Meier fit: the step curve, per-group medians and landmark survival."""

    curve: pd.DataFrame
    summary: pd.DataFrame
    landmarks: pd.DataFrame
    alpha: float


def prepare_survival_frame(
    df: pd.DataFrame, time: str, event: str, extra: Sequence[str] = ()
) -> pd.DataFrame:
    """Select ``time``, ``event`` and ``extra`` columns, drop incomplete rows, check values.

    Shared by the survival estimators so that every model sees the same rows.
    ``event`` may be boolean or 0/1; it is returned as int 0/1.
    """
    columns = [time, event, *[c for c in extra if c is not None]]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"columns {missing} not in the data (have {list(df.columns)})")
    data = df[list(dict.fromkeys(columns))].dropna()
    data = data.assign(**{time: data[time].astype(float)})
    if (data[time] < 0).any():
        raise ValueError(f"column {time!r} has negative times; survival times must be >= 0")
    ev = data[event].astype(float)
    if not ev.isin([0.0, 1.0]).all():
        raise ValueError(f"column {event!r} must be 0/1 or boolean (1 = event, 0 = censored)")
    return data.assign(**{event: ev.astype(int)})


def group_labels(data: pd.DataFrame, group: str | None) -> pd.Series:
    """Group labels as strings; the single label ``"all"`` when ``group`` is None."""
    if group is None:
        return pd.Series(ALL_GROUP, index=data.index)
    return data[group].astype(str)


def _km_table(time: np.ndarray, event: np.ndarray) -> pd.DataFrame:
    """KM estimate at every distinct time (events and censorings), Greenwood SE of log S."""
    sf = SurvfuncRight(time, event)
    utime, inverse = np.unique(time, return_inverse=True)
    events = np.bincount(inverse, weights=event, minlength=len(utime)).astype(int)
    n_at_time = np.bincount(inverse, minlength=len(utime))
    at_risk = np.cumsum(n_at_time[::-1])[::-1]
    # Carry the estimate (defined at event times) forward over censoring-only times.
    pos = np.searchsorted(sf.surv_times, utime, side="right") - 1
    known = pos >= 0
    surv = np.where(known, sf.surv_prob[np.clip(pos, 0, None)], 1.0)
    se = np.where(known, sf.surv_prob_se[np.clip(pos, 0, None)], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        se_log = np.where(surv > 0, se / surv, np.nan)
    return pd.DataFrame(
        {
            "time": utime,
            "survival": surv,
            "se_log": se_log,
            "at_risk": at_risk,
            "events": events,
            "censored": n_at_time - events,
        }
    )


def loglog_band(surv: np.ndarray, se_log: np.ndarray, alpha: float) -> tuple[np.ndarray, ...]:
    """Pointwise log-log interval, as ``survfit(conf.type="log-log")``.

    ``se_log`` is the Greenwood standard error of log S(t) (R's ``std.err``).
    Limits are 1 where S = 1 and undefined (NaN) where S = 0, as in R.
    """
    z = norm.ppf(1 - alpha / 2)
    surv = np.asarray(surv, dtype=float)
    special = (surv <= 0) | (surv >= 1)
    s = np.where(special, 0.1, surv)
    log_s = np.log(s)
    lower = np.exp(-np.exp(np.log(-log_s) - z * se_log / log_s))
    upper = np.exp(-np.exp(np.log(-log_s) + z * se_log / log_s))
    fill = np.where(surv <= 0, np.nan, 1.0)
    return np.where(special, fill, lower), np.where(special, fill, upper)


def r_quantile(times: np.ndarray, surv: np.ndarray, p: float, last_time: float) -> float:
    """Time at which a survival curve first reaches ``1 - p``, by R's ``survival:::findq``.

    Where the curve sits exactly at ``1 - p`` over an interval the answer is the
    midpoint of that interval (to the end of follow-up, ``last_time``, when the
    curve ends there); NaN when the curve never gets that low.
    """
    keep = ~np.isnan(surv)
    x = np.concatenate(([0.0], np.asarray(times, dtype=float)[keep]))
    y = np.concatenate(([0.0], 1.0 - np.asarray(surv, dtype=float)[keep]))
    if y.max() < p:
        return float("nan")
    _, first = np.unique(y, return_index=True)
    first = np.sort(first)
    x, y = x[first], y[first]
    hit1 = np.flatnonzero(y + _R_TOLERANCE >= p)
    hit2 = np.flatnonzero(y - _R_TOLERANCE >= p)
    if len(hit2) == 0:  # the curve ends exactly at 1 - p
        return float((x[hit1[0]] + last_time) / 2)
    return float((x[hit1[0]] + x[hit2[0]]) / 2)


def _landmarks(curve: pd.DataFrame, days: Sequence[float]) -> pd.DataFrame:
    """S(t) at each landmark day: the step curve read at the last time <= day.

    As ``summary(survfit, times=)``, a day past the last follow-up time is not
    estimable and gets NaN (unless the curve has already dropped to 0).
    """
    t = curve["time"].to_numpy()
    idx = np.searchsorted(t, np.asarray(days, dtype=float), side="right") - 1
    rows = curve.iloc[np.clip(idx, 0, None)][["survival", "lower", "upper"]].to_numpy(copy=True)
    beyond = (np.asarray(days) > t[-1]) & (rows[:, 0] > 0)
    rows[beyond] = np.nan
    out = pd.DataFrame(rows, columns=["survival", "lower", "upper"])
    out.insert(0, "day", np.asarray(days, dtype=float))
    return out


def fit_km(
    df: pd.DataFrame,
    time: str,
    event: str,
    group: str | None = None,
    landmarks: Sequence[float] = (1, 7, 30, 90),
    alpha: float = 0.05,
) -> KMResult:
    """Kaplan-Meier estimate per group, as R ``survfit(Surv(time, event) ~ group,
    conf.type = "log-log")``.

    The point estimate and Greenwood variance are statsmodels'
    ``SurvfuncRight``. The median is R's ``quantile.survfit`` rule (first time
    S(t) <= 0.5, midpoint on an exact 0.5 plateau) and its confidence limits are
    where the log-log band crosses 0.5 (Brookmeyer & Crowley 1982), as R prints
    them. statsmodels' ``quantile_ci(method="cloglog")`` inverts a test at event
    times instead (the SAS rule) and can differ by one event time, so it is not
    used. Rows with a missing time, event or group are dropped.

    Returns a ``KMResult`` whose ``curve`` has a row per distinct time per group
    plus a time-0 row with survival 1 (when no time equals 0).
    """
    data = prepare_survival_frame(df, time, event, [group] if group else [])
    labels = group_labels(data, group)
    curves, summaries, marks = [], [], []
    for label in sorted(labels.unique()):
        sub = data[labels == label]
        t = sub[time].to_numpy(dtype=float)
        e = sub[event].to_numpy(dtype=float)
        table = _km_table(t, e)
        lower, upper = loglog_band(table["survival"].to_numpy(), table["se_log"].to_numpy(), alpha)
        table = table.assign(lower=lower, upper=upper).drop(columns="se_log")
        if table["time"].iloc[0] > 0:
            start = {"time": 0.0, "survival": 1.0, "lower": 1.0, "upper": 1.0}
            start |= {"at_risk": len(sub), "events": 0, "censored": 0}
            table = pd.concat([pd.DataFrame([start]), table], ignore_index=True)
        table.insert(0, "group", label)
        curves.append(table[list(CURVE_COLUMNS)])

        ts, last = table["time"].to_numpy(), float(t.max())
        summaries.append(
            {
                "group": label,
                "n": len(sub),
                "events": int(e.sum()),
                "median": r_quantile(ts, table["survival"].to_numpy(), 0.5, last),
                "median_lower": r_quantile(ts, table["lower"].to_numpy(), 0.5, last),
                "median_upper": r_quantile(ts, table["upper"].to_numpy(), 0.5, last),
            }
        )
        lm = _landmarks(table, landmarks)
        lm.insert(0, "group", label)
        marks.append(lm)

    return KMResult(
        curve=pd.concat(curves, ignore_index=True),
        summary=pd.DataFrame(summaries, columns=list(SUMMARY_COLUMNS)),
        landmarks=pd.concat(marks, ignore_index=True)[list(LANDMARK_COLUMNS)],
        alpha=alpha,
    )
