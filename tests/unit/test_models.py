"""Survival models on tiny frames with hand-computed answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipeline.models import fit_cox, fit_km, logrank, rmst, rmst_difference

# Five subjects: times 1, 2, 2+, 3, 4+ (+ = censored).
#   t  n  d  c   S(t)              Greenwood sum d/(n(n-d))   SE = S sqrt(sum)
#   1  5  1  0   4/5       = 0.8   1/20   = 0.05              0.8 * sqrt(0.05)     = 0.178885
#   2  4  1  1   0.8 * 3/4 = 0.6   + 1/12 = 0.133333          0.6 * sqrt(0.133333) = 0.219089
#   3  2  1  0   0.6 * 1/2 = 0.3   + 1/2  = 0.633333          0.3 * sqrt(0.633333) = 0.238747
#   4  1  0  1   0.3 (unchanged)
# Log-log band: exp(-exp(log(-log S) -/+ z * sqrt(sum) / log S)), z = 1.959964:
#   t=1: [0.203809, 0.969180]; t=2: [0.125730, 0.881756]; t=3: [0.0123015, 0.719218]
# Median: first S <= 0.5 -> 3. Its lower limit: first time the lower band <= 0.5 -> 1;
# the upper band never reaches 0.5 -> no upper limit (NaN), as R prints NA.
TINY = pd.DataFrame({"t": [1, 2, 2, 3, 4], "e": [1, 1, 0, 1, 0]})


def test_km_hand_computed_curve() -> None:
    curve = fit_km(TINY, "t", "e").curve
    assert list(curve.columns) == [
        "group",
        "time",
        "survival",
        "lower",
        "upper",
        "at_risk",
        "events",
        "censored",
    ]
    assert (curve["group"] == "all").all()
    assert curve["time"].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(curve["survival"], [1, 0.8, 0.6, 0.3, 0.3])
    np.testing.assert_allclose(
        curve["lower"], [1, 0.203809, 0.125730, 0.0123015, 0.0123015], rtol=1e-5
    )
    np.testing.assert_allclose(
        curve["upper"], [1, 0.969180, 0.881756, 0.719218, 0.719218], rtol=1e-5
    )
    assert curve["at_risk"].tolist() == [5, 5, 4, 2, 1]
    assert curve["events"].tolist() == [0, 1, 1, 1, 0]
    assert curve["censored"].tolist() == [0, 0, 1, 0, 1]


def test_km_hand_computed_median_and_landmarks() -> None:
    fit = fit_km(TINY, "t", "e", landmarks=(0.5, 2, 3.5, 10))
    row = fit.summary.iloc[0]
    assert (row["group"], row["n"], row["events"], row["median"]) == ("all", 5, 3, 3.0)
    assert row["median_lower"] == 1.0 and math.isnan(row["median_upper"])
    np.testing.assert_allclose(fit.landmarks["survival"], [1.0, 0.6, 0.3, np.nan])


def test_km_median_on_exact_half_is_midpoint() -> None:
    # S drops to exactly 0.5 at t=2 and below at t=4: R's median is (2 + 4) / 2 = 3.
    df = pd.DataFrame({"t": [2, 2, 4, 4], "e": [1, 1, 1, 1]})
    assert fit_km(df, "t", "e").summary.at[0, "median"] == 3.0


def test_km_groups_are_strings_and_drop_missing() -> None:
    df = pd.DataFrame({"t": [1, 2, 3, 4, 5], "e": [1, 0, 1, 1, None], "g": [1, 1, 2, 2, 2]})
    fit = fit_km(df, "t", "e", "g")
    assert fit.summary["group"].tolist() == ["1", "2"]
    assert fit.summary["n"].tolist() == [2, 2]


def test_rmst_hand_computed() -> None:
    # Area to 3.5: 1*1 + 0.8*1 + 0.6*1 + 0.3*0.5 = 2.55.
    # Var = sum A_i^2 d/(n(n-d)) with A_i the area after t_i:
    #   1.55^2/20 + 0.75^2/12 + 0.15^2/2 = 0.17825 -> se 0.422197
    out = rmst(TINY, "t", "e", horizon=3.5).iloc[0]
    assert out["rmst"] == pytest.approx(2.55)
    assert out["se"] == pytest.approx(math.sqrt(0.17825))
    assert out["lower"] == pytest.approx(2.55 - 1.959964 * math.sqrt(0.17825), rel=1e-6)


def test_rmst_difference_of_identical_groups_is_zero() -> None:
    df = pd.concat([TINY.assign(g="a"), TINY.assign(g="b")], ignore_index=True)
    out = rmst_difference(df, "t", "e", "g", horizon=3.5)
    assert out[["group", "reference"]].iloc[0].tolist() == ["b", "a"]
    assert out["difference"].iloc[0] == pytest.approx(0.0)
    assert out["p"].iloc[0] == pytest.approx(1.0)


def test_logrank_identical_groups_is_zero() -> None:
    df = pd.concat([TINY.assign(g="a"), TINY.assign(g="b")], ignore_index=True)
    out = logrank(df, "t", "e", "g")
    assert list(out.columns) == ["statistic", "df", "p"]
    assert out["statistic"].iloc[0] == pytest.approx(0.0, abs=1e-12)
    assert out["df"].iloc[0] == 1 and out["p"].iloc[0] == pytest.approx(1.0)


def _cox_frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 60
    return pd.DataFrame(
        {
            "t": rng.exponential(10, n).round(1) + 0.1,
            "e": rng.integers(0, 2, n),
            "route": rng.choice(["IV", "IM", "IN"], n),
            "female": rng.integers(0, 2, n).astype(bool),
            "dose": rng.normal(1, 0.2, n),
        }
    )


def test_cox_dummy_names_default_reference_is_first_sorted() -> None:
    fit = fit_cox(_cox_frame(), "t", "e", ["route", "female", "dose"], categorical=["route"])
    assert fit.table["term"].tolist() == ["route[IN]", "route[IV]", "female", "dose"]
    assert list(fit.table.columns) == ["term", "coef", "se", "hr", "hr_lower", "hr_upper", "z", "p"]
    np.testing.assert_allclose(fit.table["hr"], np.exp(fit.table["coef"]))


def test_cox_given_reference_and_dropped_rows() -> None:
    df = _cox_frame()
    df.loc[[0, 5], "dose"] = np.nan
    fit = fit_cox(df, "t", "e", ["route", "dose"], categorical=["route"], reference={"route": "IV"})
    assert fit.table["term"].tolist() == ["route[IM]", "route[IN]", "dose"]
    assert fit.n_dropped == 2 and fit.n == 58
    assert fit.ties == "efron"


def test_cox_unknown_reference_level_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="reference level 'SC'"):
        fit_cox(_cox_frame(), "t", "e", ["route"], categorical=["route"], reference={"route": "SC"})


@pytest.mark.parametrize("ties", ["breslow", "efron"])
@pytest.mark.parametrize("stratified", [False, True])
def test_vectorised_score_residuals_equal_statsmodels(ties, stratified):
    """The sandwich's score residuals reproduce statsmodels' loop (NaN -> 0), ties included."""
    from statsmodels.duration.hazard_regression import PHReg

    from pipeline.models.cox import score_residuals

    rng = np.random.default_rng(1)
    n = 300
    x = rng.normal(size=(n, 3))
    t = np.round(rng.exponential(size=n) * np.exp(-0.5 * x[:, 0]), 1) + 0.1  # many ties
    e = (rng.random(n) < 0.7).astype(float)
    strata = rng.integers(0, 3, n) if stratified else None
    model = PHReg(t, x, status=e, ties=ties, strata=strata)
    params = model.fit().params
    expected = np.nan_to_num(model.score_residuals(params))
    np.testing.assert_allclose(score_residuals(model, params), expected, atol=1e-10)
