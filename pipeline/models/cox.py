"""Cox proportional hazards regression.

Fitted with statsmodels' ``PHReg``; this module builds the design matrix
(treatment-coded dummies named ``name[level]``), drops incomplete rows and
returns a tidy coefficient table.

References
----------
Cox DR. Regression models and life-tables. JRSS B 1972;34:187-220.
Efron B. The efficiency of Cox's likelihood function for censored data.
JASA 1977;72:557-565 (ties="efron").
Breslow N. Covariance analysis of censored survival data. Biometrics
1974;30:89-99 (ties="breslow").
Lin DY, Wei LJ. The robust inference for the Cox proportional hazards model.
JASA 1989;84:1074-1078 (cluster-robust sandwich variance).
Therneau TM. survival: R package, ``coxph(..., ties=, strata(), cluster())``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.duration.hazard_regression import PHReg

from pipeline.models.cox_likelihood import VectorisedPHReg
from pipeline.models.km import prepare_survival_frame

COX_COLUMNS = ("term", "coef", "se", "hr", "hr_lower", "hr_upper", "z", "p")


@dataclass(frozen=True)
class CoxResult:
    """A fitted Cox model: tidy table, fit statistics and the statsmodels result."""

    table: pd.DataFrame
    n: int
    events: int
    loglik: float
    ties: str
    n_dropped: int
    robust: bool
    result: Any  # statsmodels PHRegResults
    design: pd.DataFrame  # the exog matrix actually fitted, columns = term names
    time: np.ndarray
    event: np.ndarray
    strata: np.ndarray | None
    assign: dict[str, list[str]]  # covariate -> its design columns (R's fit$assign)


def _is_categorical(series: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))


def design_matrix(
    data: pd.DataFrame,
    covariates: Sequence[str],
    categorical: Sequence[str] = (),
    reference: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Numeric design matrix with treatment-coded dummies, as R's ``contr.treatment``.

    A categorical covariate (listed in ``categorical``, or of string/category
    dtype) becomes one 0/1 column ``name[level]`` per non-reference level; the
    reference is ``reference[name]`` or else the first level in sorted string
    order. Boolean columns become 0/1 under their own name; numbers pass through.
    """
    reference = dict(reference or {})
    unknown = set(reference) - set(covariates) - set(categorical)
    if unknown:
        raise ValueError(f"reference given for {sorted(unknown)}, which are not covariates")
    columns: dict[str, pd.Series] = {}
    for name in covariates:
        col = data[name]
        if name in categorical or name in reference or _is_categorical(col):
            values = col.astype(str)
            levels = sorted(values.unique())
            ref = str(reference.get(name, levels[0]))
            if ref not in levels:
                raise ValueError(
                    f"reference level {ref!r} for {name!r} is not in the data (levels: {levels})"
                )
            for level in levels:
                if level != ref:
                    columns[f"{name}[{level}]"] = (values == level).astype(float)
        elif pd.api.types.is_bool_dtype(col):
            columns[name] = col.astype(float)
        else:
            columns[name] = col.astype(float)
    return pd.DataFrame(columns, index=data.index)


def term_assignment(terms: Sequence[str], columns: Sequence[str]) -> dict[str, list[str]]:
    """Which design columns belong to each covariate (a factor owns all its dummies)."""
    return {t: [c for c in columns if c == t or c.startswith(f"{t}[")] for t in terms}


def coef_table(names: Sequence[str], coef: np.ndarray, se: np.ndarray) -> pd.DataFrame:
    """Wald table: HR = exp(coef), 95 % CI exp(coef +/- 1.96 se), two-sided normal p."""
    z = coef / se
    q = norm.ppf(0.975)
    return pd.DataFrame(
        {
            "term": list(names),
            "coef": coef,
            "se": se,
            "hr": np.exp(coef),
            "hr_lower": np.exp(coef - q * se),
            "hr_upper": np.exp(coef + q * se),
            "z": z,
            "p": 2 * norm.sf(np.abs(z)),
        }
    )


def fit_cox(
    df: pd.DataFrame,
    time: str,
    event: str,
    covariates: list[str],
    categorical: Sequence[str] = (),
    reference: dict[str, str] | None = None,
    strata: str | None = None,
    cluster: str | None = None,
    ties: str = "efron",
) -> CoxResult:
    """Cox model, as R ``coxph(Surv(time, event) ~ covariates + strata(s) + cluster(c),
    ties = ties)``.

    statsmodels ``PHReg`` maximises the partial likelihood (Efron or Breslow
    handling of tied event times) within strata, with the likelihood, score and
    Hessian vectorised (``pipeline.models.cox_likelihood``). With ``cluster`` the standard
    errors are the grouped sandwich (``fit(groups=...)``, Lin & Wei 1989), R's
    "robust se". Statsmodels builds that sandwich from Breslow-type score
    residuals, so with ``ties="efron"`` and tied event times it differs slightly
    from R's, which weights them the Efron way (0.3-0.4 % on ``lung``); with
    ``ties="breslow"`` or no ties they agree. Rows with a missing value in any
    used column are dropped and counted in ``n_dropped``.
    """
    if ties not in ("efron", "breslow"):
        raise ValueError(f"ties must be 'efron' or 'breslow', got {ties!r}")
    terms = list(dict.fromkeys([*covariates, *categorical]))
    extra = [*terms, *(c for c in (strata, cluster) if c is not None)]
    data = prepare_survival_frame(df, time, event, extra)
    n_dropped = len(df) - len(data)
    if data[event].sum() == 0:
        raise ValueError("no events left after dropping incomplete rows; cannot fit a Cox model")

    design = design_matrix(data, terms, categorical, reference)
    constant = [c for c in design.columns if design[c].nunique() < 2]
    if constant:
        raise ValueError(f"covariates {constant} do not vary in the fitted rows; drop them")
    strata_values = None if strata is None else data[strata].astype(str).to_numpy()
    model = VectorisedPHReg(
        data[time].to_numpy(dtype=float),
        design.to_numpy(),
        status=data[event].to_numpy(dtype=float),
        strata=strata_values,
        ties=ties,
    )
    result = model.fit()
    coef = np.asarray(result.params, dtype=float)
    if cluster is None:
        se = np.asarray(result.bse, dtype=float)
    else:
        se = np.sqrt(np.diag(cluster_robust_cov(model, coef, data[cluster].to_numpy())))
    return CoxResult(
        table=coef_table(design.columns, coef, se),
        n=len(data),
        events=int(data[event].sum()),
        loglik=float(result.llf),
        ties=ties,
        n_dropped=n_dropped,
        robust=cluster is not None,
        result=result,
        design=design,
        time=data[time].to_numpy(dtype=float),
        event=data[event].to_numpy(dtype=float),
        strata=strata_values,
        assign=term_assignment(terms, design.columns),
    )


def cluster_robust_cov(model: PHReg, params: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Grouped sandwich H^-1 (sum_g U_g U_g') H^-1 (Lin & Wei 1989; R ``coxph(..., cluster=)``).

    statsmodels' ``fit(groups=...)`` computes the same sandwich, but its score
    residuals loop in Python over every event time (minutes at 10^5 episodes) and are
    NaN for subjects censored before the first event, which spreads to every SE.
    ``score_residuals`` below gives the same values vectorised, with those zeros.
    """
    residuals = score_residuals(model, params)
    per_cluster = pd.DataFrame(residuals).groupby(pd.factorize(clusters)[0]).sum().to_numpy()
    bread = np.linalg.inv(-model.hessian(params))
    return bread @ (per_cluster.T @ per_cluster) @ bread


def score_residuals(model: PHReg, params: np.ndarray) -> np.ndarray:
    """Breslow-type score residuals, as statsmodels' ``PHReg.score_residuals``, vectorised.

    For subject i in its stratum (Therneau & Grambsch 2000, sec. 4.6):
    U_i = d_i (x_i - xbar(t_i)) - r_i [x_i L(t_i) - C(t_i)], with r = exp(x'beta),
    dL_j = d_j / S0(t_j) at each event time, L and C = sum_{t_j <= t} dL_j and
    sum_{t_j <= t} xbar(t_j) dL_j, and xbar(t) = S1(t) / S0(t) over the risk set {t_k >= t}.
    """
    surv = model.surv
    out = np.zeros(model.exog.shape, dtype=float)
    for stx in range(surv.nstrat):
        rows = surv.stratum_rows[stx]
        time = surv.time_s[stx]
        status = surv.status_s[stx]
        x = surv.exog_s[stx]
        eta = x @ params
        r = np.exp(eta - eta.max())
        order = np.argsort(time, kind="stable")
        t, d, xs, rs = time[order], status[order], x[order], r[order]
        uniq, first = np.unique(t, return_index=True)
        # Risk-set sums at each distinct time: reverse cumulative sums from its first row.
        s0 = np.cumsum(rs[::-1])[::-1][first]
        s1 = np.cumsum((rs[:, None] * xs)[::-1], axis=0)[::-1][first]
        deaths = np.add.reduceat(d, first)
        dl = deaths / s0
        xbar = s1 / s0[:, None]
        cum_l = np.cumsum(dl)
        cum_c = np.cumsum(xbar * dl[:, None], axis=0)
        at = np.searchsorted(uniq, t)  # index of each subject's own time
        resid = d[:, None] * (xs - xbar[at]) - rs[:, None] * (xs * cum_l[at][:, None] - cum_c[at])
        unsorted = np.empty_like(resid)
        unsorted[order] = resid
        out[rows] = unsorted
    return out
