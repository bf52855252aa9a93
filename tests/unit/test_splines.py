"""Natural-spline dose-response in the Cox model (pipeline.models.splines).

R values: ``tests/reference/make_spline_reference.R`` on ``simulate()`` below
(R 4.2.2, survival 3.5.3): ``coxph(Surv(t, e) ~ ns(x, df = 3) + z)``, log HR at
each grid value relative to the median of x, and its SE from ``vcov``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.models.splines import dose_response, ns_knots, spline_terms

BETA_X, BETA_Z = -0.8, 0.5

# (value, R log HR vs median, R se)
R_VALUES: list[tuple[float, float, float]] = [
    (0.3, 0.2403262240, 0.1422254969),
    (0.5, 0.0718631996, 0.0938076311),
    (0.8, 0.0005576338, 0.0229686743),
    (1.0, -0.0310732202, 0.0613978517),
    (1.2, -0.2199202858, 0.0936036654),
    (1.4, -0.5567846502, 0.1734309334),
]


def simulate(n: int = 600, seed: int = 42) -> pd.DataFrame:
    """Exponential times with a log-linear effect of x (log HR -0.8 per unit)."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.uniform(0.2, 1.5, n), 3)
    z = rng.integers(0, 2, n)
    t_true = rng.exponential(1.0, n) / (0.05 * np.exp(BETA_X * x + BETA_Z * z))
    c = rng.uniform(5.0, 60.0, n)
    t = np.round(np.minimum(t_true, c), 1) + 0.1
    return pd.DataFrame({"t": t, "e": (t_true <= c).astype(int), "x": x, "z": z})


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return simulate()


def test_knots_as_r_ns(data: pd.DataFrame) -> None:
    spline = spline_terms(data, "x", df=3)
    x = data["x"].to_numpy()
    np.testing.assert_allclose(spline.knots, np.quantile(x, [0, 1 / 3, 2 / 3, 1]))
    assert list(spline.basis.columns) == ["x_ns1", "x_ns2", "x_ns3"]
    np.testing.assert_allclose(spline.at(x[:5]).to_numpy(), spline.basis.iloc[:5].to_numpy())
    assert ns_knots(x, 1).tolist() == [x.min(), x.max()]


def test_matches_r_coxph_ns(data: pd.DataFrame) -> None:
    grid = [v for v, _, _ in R_VALUES]
    curve = dose_response(data, "t", "e", "x", adjust=["z"], grid=grid)
    np.testing.assert_allclose(curve["log_hr"], [r for _, r, _ in R_VALUES], rtol=1e-6)
    se = (curve["upper"] - curve["lower"]) / (2 * 1.959963984540054)
    np.testing.assert_allclose(se, [s for _, _, s in R_VALUES], rtol=1e-6)


def test_recovers_log_linear_slope() -> None:
    """With a truly log-linear effect the spline curve covers the true line.

    Truth at v is BETA_X * (v - median(x)); three grid points checked at once, so
    each uses a Bonferroni interval (alpha = 0.05 / 3).
    """
    data = simulate(4000, seed=1)
    grid = [0.4, 0.85, 1.3]
    curve = dose_response(data, "t", "e", "x", adjust=["z"], grid=grid, alpha=0.05 / 3)
    truth = BETA_X * (np.array(grid) - data["x"].median())
    assert ((curve["lower"] < truth) & (truth < curve["upper"])).all()
    slope = (curve["log_hr"].iloc[-1] - curve["log_hr"].iloc[0]) / 0.9
    assert slope == pytest.approx(BETA_X, abs=0.15)
    assert np.allclose(curve["hr"], np.exp(curve["log_hr"]))


def test_errors_name_the_column(data: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="dose"):
        dose_response(data, "t", "e", "dose", adjust=["z"])
    with pytest.raises(ValueError, match="'x'"):
        dose_response(data, "t", "e", "x", adjust=["x"])
