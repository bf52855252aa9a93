"""Aalen-Johansen cumulative incidence (pipeline.models.competing) against R's survival.

The 40 rows below are made up (no patient data). Expected values come from
``survfit(Surv(time, factor(cause)) ~ 1)`` and ``~ arm`` with R 4.2.2 / survival 3.5.3:
``Rscript tests/reference/make_competing_reference.R`` prints exactly these rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.models.competing import competing_causes, cumulative_incidence

TIME = [48, 6, 11, 14, 11, 48, 52, 35, 3, 6, 20, 26, 37, 29, 16, 10, 41, 44, 2, 7,
        27, 24, 53, 31, 25, 26, 40, 35, 11, 44, 45, 57, 47, 17, 19, 39, 39, 42, 52, 18]  # fmt: skip
CAUSE = [0, 2, 1, 1, 2, 1, 1, 2, 0, 1, 1, 0, 1, 2, 0, 1, 1, 1, 1, 0,
         2, 1, 1, 2, 1, 2, 2, 0, 2, 1, 1, 0, 1, 1, 2, 1, 1, 1, 1, 0]  # fmt: skip
ARM_A = [2, 3, 5, 7, 11, 12, 13, 16, 27, 30, 32, 33, 34, 35, 36, 38]  # 1-based rows in arm "a"
DAYS = (10, 20, 30, 45)

# (group, cause, day, R pstate, R std.err)
R_VALUES = [
    ("all", 1, 10, 0.0770488722, 0.0427670116),
    ("all", 1, 20, 0.1854439979, 0.0634315506),
    ("all", 1, 30, 0.2420683173, 0.0705197727),
    ("all", 1, 45, 0.4941813586, 0.0859292174),
    ("all", 2, 10, 0.0256578947, 0.0253263728),
    ("all", 2, 20, 0.1067520093, 0.0505280422),
    ("all", 2, 30, 0.1943848846, 0.0661841889),
    ("all", 2, 45, 0.2852197304, 0.0765915201),
    ("a", 1, 10, 0.0625000000, 0.0605153648),
    ("a", 1, 20, 0.2500000000, 0.1082531755),
    ("a", 1, 30, 0.2500000000, 0.1082531755),
    ("a", 1, 45, 0.5312500000, 0.1290836847),
    ("b", 1, 10, 0.0852272727, 0.0576821792),
    ("b", 1, 20, 0.1309659091, 0.0706417031),
    ("b", 1, 30, 0.2338778409, 0.0924272743),
    ("b", 1, 45, 0.4654296875, 0.1147978204),
    ("a", 2, 10, 0.0625000000, 0.0605153648),
    ("a", 2, 20, 0.1875000000, 0.0975780937),
    ("a", 2, 30, 0.1875000000, 0.0975780937),
    ("a", 2, 45, 0.2578125000, 0.1115335276),
    ("b", 2, 10, 0.0000000000, 0.0000000000),
    ("b", 2, 20, 0.0457386364, 0.0446737037),
    ("b", 2, 30, 0.2001065341, 0.0895922538),
    ("b", 2, 45, 0.3030184659, 0.1031746500),
]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    arm = np.where(np.isin(np.arange(1, 41), ARM_A), "a", "b")
    return pd.DataFrame({"time": TIME, "cause": CAUSE, "arm": arm})


@pytest.mark.parametrize("group", [None, "arm"])
def test_matches_r_survfit_multistate(data: pd.DataFrame, group: str | None) -> None:
    _, at = cumulative_incidence(data, "time", "cause", group=group, horizons=DAYS)
    at = at.set_index(["group", "cause", "horizon"])
    expected = [r for r in R_VALUES if (r[0] == "all") == (group is None)]
    for label, cause, day, cif, se in expected:
        row = at.loc[(label, cause, float(day))]
        assert row["cif"] == pytest.approx(cif, rel=1e-4, abs=1e-10)
        # statsmodels' delta-method SE equals R's infinitesimal-jackknife std.err here.
        assert row["se"] == pytest.approx(se, rel=1e-4, abs=1e-10)


def test_curve_shape(data: pd.DataFrame) -> None:
    curve, at = cumulative_incidence(data, "time", "cause", horizons=(30, 90))
    assert list(curve.columns) == ["group", "cause", "time", "cif", "se", "lower", "upper"]
    for _, c in curve.groupby("cause"):
        assert c["cif"].iloc[0] == 0.0
        assert c["cif"].is_monotonic_increasing
        assert ((c["lower"] <= c["cif"] + 1e-12) & (c["cif"] <= c["upper"] + 1e-12)).all()
    # CIF_1 + CIF_2 + S_KM(all causes) = 1 (Aalen-Johansen is a proper distribution).
    last = curve.groupby("cause")["cif"].last().sum()
    assert 0 < last <= 1
    # Day 90 is after the last follow-up (57): not estimable.
    assert at.loc[at["horizon"] == 90, "cif"].isna().all()


def test_group_without_competing_events() -> None:
    df = pd.DataFrame({"t": [1, 2, 3, 4], "c": [1, 0, 1, 0]})
    curve, _ = cumulative_incidence(df, "t", "c")
    assert (curve.loc[curve["cause"] == 2, "cif"] == 0).all()
    assert curve.loc[curve["cause"] == 1, "cif"].iloc[-1] == pytest.approx(0.625)


def test_competing_causes_mapping() -> None:
    ep = pd.DataFrame({"censor_reason": ["returned", "retreated", "end_of_data", None]})
    codes = competing_causes(ep)
    assert codes.iloc[:3].tolist() == [1, 2, 0]
    assert codes.isna().iloc[3]
    with pytest.raises(ValueError, match="lost"):
        competing_causes(pd.DataFrame({"censor_reason": ["lost"]}))


def test_bad_codes_name_the_column(data: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="'cause'"):
        cumulative_incidence(data.assign(cause=3), "time", "cause")
    with pytest.raises(ValueError, match="nope"):
        cumulative_incidence(data, "nope", "cause")
