"""Natural cubic splines for dose and infusion length in the Cox model.

A linear term forces "each extra mg/kg changes the hazard by the same factor";
a natural cubic spline lets the data show a plateau or a threshold while staying
linear beyond the boundary knots (where data are thin). The basis is patsy's
``cr`` (natural cubic regression spline) with the knots R's ``splines::ns(x, df)``
uses: boundary knots at min and max, ``df - 1`` interior knots at equally spaced
quantiles. Together with a constant the two bases span the same function space,
so Cox fits and predicted contrasts are identical (tests/unit/test_splines.py
checks against ``coxph(Surv(t, e) ~ ns(x, df = 3))``); only the coefficients
differ, being in another basis.

References
----------
Durrleman S, Simon R. Flexible regression models with cubic splines. Stat Med
1989;8:551-561.
Harrell FE. Regression Modeling Strategies, 2nd ed. Springer 2015, section 2.4.
Wood SN. Generalized Additive Models, 2nd ed. 2017, section 5.3.1 (the ``cr`` basis).
R: ``splines::ns``, ``survival::coxph``, ``termplot``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import patsy
from scipy.stats import norm

from pipeline.models.cox import fit_cox

DOSE_RESPONSE_COLUMNS = ("value", "log_hr", "lower", "upper", "hr", "hr_lower", "hr_upper")


@dataclass(frozen=True)
class SplineBasis:
    """Spline columns for one covariate and the knots that define them."""

    column: str
    knots: np.ndarray  # all df + 1 knots: boundary knots first and last
    basis: pd.DataFrame  # columns f"{column}_ns1" ... f"{column}_ns{df}"

    def at(self, values: Sequence[float] | np.ndarray) -> pd.DataFrame:
        """The same basis evaluated at new values (linear beyond the boundary knots)."""
        return pd.DataFrame(
            spline_basis(np.asarray(values, dtype=float), self.knots),
            columns=self.basis.columns,
        )


def ns_knots(values: np.ndarray, df: int) -> np.ndarray:
    """Knots as R ``ns(x, df)``: range of x and quantiles at k/df, k = 1..df-1
    (R's default type-7 quantiles = numpy's linear interpolation)."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    return np.quantile(values, np.linspace(0.0, 1.0, df + 1))


def spline_basis(values: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """patsy ``cr`` basis with the given knots and no constant.

    The unconstrained ``cr`` basis is cardinal (coefficients = function values at
    the knots, columns sum to 1); the constraint "values at the knots sum to 0"
    removes the constant without depending on the data, so a basis can be
    re-evaluated at new values from the knots alone.
    """
    knots = np.asarray(knots, dtype=float)
    if len(np.unique(knots)) != len(knots):
        raise ValueError(f"spline knots are not distinct ({knots}); use a smaller df")
    return np.asarray(
        patsy.cr(
            values,
            knots=knots[1:-1],
            lower_bound=knots[0],
            upper_bound=knots[-1],
            constraints=np.ones((1, len(knots))),
        )
    )


def spline_terms(frame: pd.DataFrame, column: str, df: int = 3) -> SplineBasis:
    """Natural cubic spline basis for ``column`` with knots as R ``ns(x, df)``.

    Rows with a missing value get NaN in every basis column (and are then dropped
    by the model like any incomplete row).
    """
    if column not in frame.columns:
        raise ValueError(f"column {column!r} not in the data")
    x = pd.to_numeric(frame[column], errors="coerce").astype(float)
    present = x.notna().to_numpy()
    if present.sum() <= df:
        raise ValueError(f"column {column!r} has too few values for a spline with df={df}")
    knots = ns_knots(x[present].to_numpy(), df)
    names = [f"{column}_ns{i + 1}" for i in range(df)]
    values = np.full((len(x), df), np.nan)
    values[present] = spline_basis(x[present].to_numpy(), knots)
    return SplineBasis(column, knots, pd.DataFrame(values, columns=names, index=frame.index))


def dose_response(
    frame: pd.DataFrame,
    time: str,
    event: str,
    column: str,
    adjust: list[str],
    categorical: Sequence[str] = (),
    df: int = 3,
    grid: Sequence[float] | None = None,
    reference: dict[str, str] | None = None,
    ties: str = "efron",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Adjusted hazard ratio across the range of ``column``, relative to its median.

    Fits ``fit_cox(time, event ~ ns(column, df) + adjust)`` and returns, for each
    value v of ``grid`` (default: 50 points from the 5th to the 95th percentile),
    log HR(v) = (B(v) - B(median))' beta with the pointwise Wald interval from the
    covariance of the spline coefficients, c' V c (``cov_params()`` of the fit).
    As R ``predict(coxph(...), newdata, type="lp")`` differenced at the median.
    The median is that of the rows the model used.
    """
    if column in adjust:
        raise ValueError(f"{column!r} is both the spline variable and in adjust")
    needed = list(dict.fromkeys([time, event, column, *adjust, *categorical]))
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"columns {missing} not in the data")
    fit_rows = frame.dropna(subset=needed)
    spline = spline_terms(fit_rows, column, df)
    names = list(spline.basis.columns)
    data = pd.concat([fit_rows, spline.basis], axis=1)
    cox = fit_cox(
        data,
        time,
        event,
        covariates=[*names, *adjust],
        categorical=categorical,
        reference=reference,
        ties=ties,
    )
    x = fit_rows[column].astype(float)
    median = float(x.median())
    if grid is None:
        grid = np.linspace(*np.quantile(x, [0.05, 0.95]), 50)
    values = np.asarray(grid, dtype=float)
    contrast = spline.at(values).to_numpy() - spline.at([median]).to_numpy()
    index = [list(cox.design.columns).index(n) for n in names]
    beta = np.asarray(cox.result.params, dtype=float)[index]
    cov = np.asarray(cox.result.cov_params(), dtype=float)[np.ix_(index, index)]
    log_hr = contrast @ beta
    se = np.sqrt(np.einsum("ij,jk,ik->i", contrast, cov, contrast))
    q = norm.ppf(1 - alpha / 2)
    lower, upper = log_hr - q * se, log_hr + q * se
    return pd.DataFrame(
        {
            "value": values,
            "log_hr": log_hr,
            "lower": lower,
            "upper": upper,
            "hr": np.exp(log_hr),
            "hr_lower": np.exp(lower),
            "hr_upper": np.exp(upper),
        }
    )[list(DOSE_RESPONSE_COLUMNS)]
