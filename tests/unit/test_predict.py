"""Personalised Cox predictions (pipeline.models.predict) against lifelines on rossi."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.datasets import load_rossi

from pipeline.models.cox import fit_cox
from pipeline.models.predict import (
    baseline_hazard_table,
    design_means_table,
    predict_from_tables,
    predict_profile,
)

COVS = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]


@pytest.fixture(scope="module")
def rossi() -> pd.DataFrame:
    return load_rossi()


@pytest.fixture(scope="module")
def cox(rossi: pd.DataFrame):
    return fit_cox(rossi, "week", "arrest", COVS, ties="efron")


@pytest.mark.parametrize("row", [0, 3, 17, 200])
def test_matches_lifelines(rossi: pd.DataFrame, cox, row: int) -> None:
    """lifelines: Efron partial likelihood, Breslow baseline -- the same as relief."""
    cph = CoxPHFitter().fit(rossi[["week", "arrest", *COVS]], "week", "arrest")
    profile = rossi.iloc[row][COVS].to_dict()
    expected = cph.predict_survival_function(pd.DataFrame([profile])).iloc[:, 0]
    curve, summary = predict_profile(cox, profile)
    t = curve["time"].to_numpy()
    got = curve["survival"].to_numpy()[np.searchsorted(t, expected.index, side="right") - 1]
    np.testing.assert_allclose(got, expected.to_numpy(), atol=1e-4)
    assert summary["p30"] == pytest.approx(expected.loc[:30].iloc[-1], abs=1e-4)


def test_baseline_is_statsmodels_shifted(cox) -> None:
    """statsmodels 0.15 reports H(t-) at x = 0; ours is H(t) at the means."""
    times, sm_cumhaz, _ = cox.result.baseline_cumulative_hazard[0]
    base = baseline_hazard_table(cox)
    ours = base["cumhaz"].to_numpy()[: len(times)]
    shift = np.exp(design_means_table(cox)["mean"].to_numpy() @ cox.result.params)
    np.testing.assert_allclose(ours[:-1], sm_cumhaz[1:] * shift, rtol=1e-10)
    assert base["time"].iloc[-1] == cox.time.max()


def test_from_stored_tables_round_trip(cox, tmp_path) -> None:
    """Tables written to CSV and read back give the same curve (the warehouse path)."""
    tables = {
        "coef": cox.table,
        "baseline": baseline_hazard_table(cox),
        "means": design_means_table(cox),
    }
    for name, frame in tables.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    back = {name: pd.read_csv(tmp_path / f"{name}.csv") for name in tables}
    profile = dict.fromkeys(COVS, 0) | {"age": 25, "prio": 2}
    a, sa = predict_profile(cox, profile)
    b, sb = predict_from_tables(back["coef"], back["baseline"], back["means"], profile)
    np.testing.assert_allclose(a["survival"], b["survival"], rtol=1e-12)
    assert sa == pytest.approx(sb, rel=1e-12, nan_ok=True)


def test_factor_profile_and_errors() -> None:
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame(
        {
            "t": rng.exponential(20, n),
            "e": rng.integers(0, 2, n),
            "route": rng.choice(["IV", "IM", "IN"], n),
            "is_series": rng.integers(0, 2, n).astype(bool),
            "dose_mg_per_kg": rng.uniform(0.2, 1.0, n),
        }
    )
    cox = fit_cox(
        df, "t", "e", ["route", "is_series", "dose_mg_per_kg"], ["route"], {"route": "IV"}
    )
    ok = {"route": "IV", "is_series": True, "dose_mg_per_kg": 0.5}
    curve, summary = predict_profile(cox, ok)
    assert curve["survival"].iloc[0] == 1.0 and curve["survival"].is_monotonic_decreasing
    im, _ = predict_profile(cox, ok | {"route": "IM"})
    hr = np.exp(cox.table.set_index("term").at["route[IM]", "coef"])
    np.testing.assert_allclose(np.log(im["survival"][1:]), hr * np.log(curve["survival"][1:]))
    with pytest.raises(
        ValueError, match=r"unknown keys \['dose'\].*missing keys \['dose_mg_per_kg'\]"
    ):
        predict_profile(cox, {"route": "IV", "is_series": 1, "dose": 0.5})
    with pytest.raises(ValueError, match="route='SC'"):
        predict_profile(cox, ok | {"route": "SC"})
    assert np.isnan(summary["p90"]) == (df["t"].max() < 90)
