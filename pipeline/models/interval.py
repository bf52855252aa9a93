"""Interval-censored survival: Turnbull NPMLE and Weibull fits on (lower, upper] bounds.

Pain return is only seen at diary visits, so the true return time lies between the
last relieved visit (``time_lower_days``) and the first visit with pain back
(``time_upper_days``; +inf when right-censored). These estimators use both bounds
instead of the visit at which the return was observed. All fitting is done by
lifelines (maintained, tested likelihood code); this module only shapes inputs and
returns tidy frames.

References
----------
Turnbull BW. The empirical distribution function with arbitrarily grouped, censored
and truncated data. JRSS B 1976;38:290-295.
Lindsey JC, Ryan LM. Methods for interval-censored data. Stat Med 1998;17:219-238.
Kalbfleisch JD, Prentice RL. The Statistical Analysis of Failure Time Data, 2nd ed.
2002, section 2.2.2 (Weibull as both PH and AFT model: beta_PH = -shape * beta_AFT).
lifelines: ``KaplanMeierFitter.fit_interval_censoring`` (Turnbull via EM),
``WeibullFitter.fit_interval_censoring``, ``WeibullAFTFitter.fit_interval_censoring``.
R equivalents: ``icenReg::ic_np``, ``survival::survreg(Surv(l, u, type="interval2")
~ x, dist="weibull")``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter, WeibullAFTFitter, WeibullFitter
from scipy.stats import norm

from pipeline.models.cox import design_matrix
from pipeline.models.km import ALL_GROUP

TURNBULL_COLUMNS = ("group", "time", "survival", "survival_lower_envelope")
WEIBULL_COLUMNS = (
    "group",
    "shape",
    "scale",
    "shape_lower",
    "shape_upper",
    "scale_lower",
    "scale_upper",
    "median",
    "n",
)
AFT_COLUMNS = (
    "term",
    "coef",
    "se",
    "lower",
    "upper",
    "p",
    "ph_coef",
    "ph_se",
    "ph_lower",
    "ph_upper",
)


def interval_bounds(
    df: pd.DataFrame, lower: str, upper: str, extra: Sequence[str] = ()
) -> pd.DataFrame:
    """Rows with a usable lower bound; a missing upper bound becomes +inf (right-censored).

    Raises ValueError naming the column when a column is absent or the bounds are
    inconsistent (negative, or upper < lower).
    """
    columns = [lower, upper, *extra]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} not in the data (have {list(df.columns)})")
    data = df[list(dict.fromkeys(columns))].copy()
    data[lower] = pd.to_numeric(data[lower], errors="coerce").astype(float)
    data[upper] = pd.to_numeric(data[upper], errors="coerce").astype(float).fillna(np.inf)
    data = data.dropna(subset=[lower, *extra])
    if (data[lower] < 0).any():
        raise ValueError(f"column {lower!r} has negative times")
    if (data[upper] < data[lower]).any():
        raise ValueError(f"column {upper!r} is below {lower!r} in some rows")
    if data.empty:
        raise ValueError(f"no rows with a value in {lower!r}")
    return data


def _groups(data: pd.DataFrame, group: str | None) -> list[tuple[str, pd.DataFrame]]:
    if group is None:
        return [(ALL_GROUP, data)]
    labels = data[group].astype(str)
    return [(label, data[labels == label]) for label in sorted(labels.unique())]


def turnbull(df: pd.DataFrame, lower: str, upper: str, group: str | None = None) -> pd.DataFrame:
    """Turnbull's nonparametric MLE of S(t) from interval-censored data, per group.

    Computed by lifelines ``KaplanMeierFitter.fit_interval_censoring`` (EM on the
    Turnbull intervals). The NPMLE fixes the probability mass of each Turnbull
    interval but not where inside it the mass sits: ``survival`` puts it at the
    right end (the curve drops when the return is first *seen*, like the visit-time
    KM), ``survival_lower_envelope`` at the left end. Both agree outside the
    Turnbull intervals. The curve is a right-continuous step function (S at
    ``time`` holds until the next row), starting at the smallest bound.

    Ties: lifelines treats bounds as closed, so a censoring (lower = t) tied with an
    exact event at t may have failed at t; with such ties the NPMLE differs from KM
    (which assumes censored subjects outlive tied deaths). Visit-interval data
    rarely has exact times. Returns (group, time, survival, survival_lower_envelope).
    """
    data = interval_bounds(df, lower, upper, [group] if group else [])
    frames = []
    for label, sub in _groups(data, group):
        kmf = KaplanMeierFitter().fit_interval_censoring(
            sub[lower].to_numpy(), sub[upper].to_numpy()
        )
        # lifelines indexes the NPMLE by interval end: the value at t_k holds on
        # [t_(k-1), t_k). Shift by one to the usual right-continuous step curve.
        sf = kmf.survival_function_
        times = sf.index.to_numpy(dtype=float)
        frames.append(
            pd.DataFrame(
                {
                    "group": label,
                    "time": times[:-1],
                    "survival": sf["NPMLE_estimate_upper"].to_numpy()[1:],
                    "survival_lower_envelope": sf["NPMLE_estimate_lower"].to_numpy()[1:],
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    return out[np.isfinite(out["time"])].reset_index(drop=True)[list(TURNBULL_COLUMNS)]


def fit_weibull_interval(
    df: pd.DataFrame, lower: str, upper: str, group: str | None = None, alpha: float = 0.05
) -> pd.DataFrame:
    """Weibull S(t) = exp(-(t/scale)^shape) fitted by maximum likelihood to interval
    bounds, per group (lifelines ``WeibullFitter.fit_interval_censoring``; R
    ``survreg(Surv(l, u, type="interval2") ~ 1, dist="weibull")`` with
    shape = 1/scale_R, scale = exp(intercept)).

    lifelines estimates (lambda_, rho_) on the natural scale with Wald limits; the
    limits here are computed on the log scale (delta method, se(log x) = se(x)/x) so
    they stay positive. median = scale * log(2)^(1/shape).
    """
    data = interval_bounds(df, lower, upper, [group] if group else [])
    q = norm.ppf(1 - alpha / 2)
    rows = []
    for label, sub in _groups(data, group):
        wf = WeibullFitter().fit_interval_censoring(sub[lower].to_numpy(), sub[upper].to_numpy())
        se = np.sqrt(np.diag(wf.variance_matrix_.loc[["lambda_", "rho_"], ["lambda_", "rho_"]]))
        scale, shape = float(wf.lambda_), float(wf.rho_)
        se_log_scale, se_log_shape = se[0] / scale, se[1] / shape
        rows.append(
            {
                "group": label,
                "shape": shape,
                "scale": scale,
                "shape_lower": shape * np.exp(-q * se_log_shape),
                "shape_upper": shape * np.exp(q * se_log_shape),
                "scale_lower": scale * np.exp(-q * se_log_scale),
                "scale_upper": scale * np.exp(q * se_log_scale),
                "median": scale * np.log(2.0) ** (1.0 / shape),
                "n": len(sub),
            }
        )
    return pd.DataFrame(rows, columns=list(WEIBULL_COLUMNS))


def fit_weibull_aft_interval(
    df: pd.DataFrame,
    lower: str,
    upper: str,
    covariates: Sequence[str],
    categorical: Sequence[str] = (),
    reference: Mapping[str, str] | None = None,
    entry: str | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Weibull accelerated-failure-time regression on interval bounds, with the
    implied proportional-hazards coefficients.

    Model (lifelines ``WeibullAFTFitter.fit_interval_censoring``; R ``survreg(...,
    dist="weibull")``): S(t|x) = exp(-(t / exp(b0 + x'b))^shape). The Weibull is
    also a PH model with log hazard ratio ``ph_coef = -shape * coef`` (Kalbfleisch &
    Prentice 2002, 2.2.2), directly comparable to a Cox coefficient; its SE is the
    delta method over (coef, log shape) using lifelines' full covariance matrix.

    ``entry`` (optional column) is a left-truncation time: an episode only enters the
    analysis if relief was seen at ``entry`` (the first relieved visit), so episodes
    whose pain came back before that visit are missing by design. Conditioning on
    T > entry removes that selection (see tests/unit/test_interval.py).

    Dummies are named ``name[level]`` as in ``fit_cox``. Extra rows ``(Intercept)``
    (log scale at x = 0) and ``log(shape)`` are included; their ``ph_*`` are NaN.
    """
    terms = list(dict.fromkeys([*covariates, *categorical]))
    data = interval_bounds(df, lower, upper, [*terms, *([entry] if entry else [])])
    design = design_matrix(data, terms, categorical, reference)
    constant = [c for c in design.columns if design[c].nunique() < 2]
    if constant:
        raise ValueError(f"covariates {constant} do not vary in the fitted rows; drop them")
    # lifelines parses column names in formulas; plain names keep it out of the way.
    names = {c: f"x{i}" for i, c in enumerate(design.columns)}
    frame = design.rename(columns=names).assign(_lo=data[lower], _hi=data[upper])
    if entry:
        if (data[entry] > data[lower]).any():
            raise ValueError(f"column {entry!r} is after {lower!r} in some rows")
        frame["_entry"] = data[entry].astype(float)
    aft = WeibullAFTFitter().fit_interval_censoring(
        frame, "_lo", "_hi", entry_col="_entry" if entry else None
    )
    params = aft.params_
    cov = aft.variance_matrix_
    keys = [("lambda_", names[c]) for c in design.columns] + [("lambda_", "Intercept")]
    log_shape_key = ("rho_", "Intercept")
    labels = [*design.columns, "(Intercept)", "log(shape)"]
    all_keys = [*keys, log_shape_key]
    coef = params.loc[all_keys].to_numpy(dtype=float)
    se = np.sqrt(np.diag(cov.loc[all_keys, all_keys].to_numpy(dtype=float)))
    q = norm.ppf(1 - alpha / 2)
    z = coef / se

    shape = float(np.exp(params.loc[log_shape_key]))
    n_cov = len(design.columns)
    ph_coef = np.full(len(all_keys), np.nan)
    ph_se = np.full(len(all_keys), np.nan)
    sub = cov.loc[[*keys[:n_cov], log_shape_key], [*keys[:n_cov], log_shape_key]].to_numpy()
    for i in range(n_cov):
        grad = np.array([-shape, -coef[i] * shape])  # d(-b*exp(g)) / d(b, g)
        block = sub[np.ix_([i, n_cov], [i, n_cov])]
        ph_coef[i] = -coef[i] * shape
        ph_se[i] = float(np.sqrt(grad @ block @ grad))
    return pd.DataFrame(
        {
            "term": labels,
            "coef": coef,
            "se": se,
            "lower": coef - q * se,
            "upper": coef + q * se,
            "p": 2 * norm.sf(np.abs(z)),
            "ph_coef": ph_coef,
            "ph_se": ph_se,
            "ph_lower": ph_coef - q * ph_se,
            "ph_upper": ph_coef + q * ph_se,
        }
    )[list(AFT_COLUMNS)]
