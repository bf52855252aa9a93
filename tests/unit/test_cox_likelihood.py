"""The vectorised partial likelihood equals statsmodels' own PHReg loops."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.duration.hazard_regression import PHReg

from pipeline.models.cox_likelihood import VectorisedPHReg


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(11)
    n = 400
    x = rng.normal(size=(n, 3))
    time = np.round(rng.exponential(np.exp(-x @ [0.5, -0.3, 0.2])) * 8)  # many ties
    status = (rng.random(n) < 0.7).astype(float)
    strata = rng.integers(0, 3, n)
    strata[:5] = 9  # a stratum with events and one without
    status[strata == 9] = 0.0
    return time, status, x, strata


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("stratified", [False, True])
def test_matches_statsmodels(data, ties, stratified) -> None:
    time, status, x, strata = data
    kw = {"status": status, "ties": ties, "strata": strata if stratified else None}
    plain, fast = PHReg(time, x, **kw), VectorisedPHReg(time, x, **kw)
    params = np.array([0.3, -0.2, 0.1])
    assert fast.loglike(params) == pytest.approx(plain.loglike(params), rel=1e-10)
    np.testing.assert_allclose(fast.score(params), plain.score(params), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fast.hessian(params), plain.hessian(params), rtol=1e-9)
    a, b = plain.fit(), fast.fit()
    np.testing.assert_allclose(b.params, a.params, rtol=1e-8)
    np.testing.assert_allclose(b.bse, a.bse, rtol=1e-8)
    # Same informative rows per stratum, and the same baseline hazard.
    assert [sorted(r) for r in fast.surv.stratum_rows] == [
        sorted(r) for r in plain.surv.stratum_rows
    ]
    for (_, h_a, _), (_, h_b, _) in zip(
        plain.baseline_cumulative_hazard(a.params),
        fast.baseline_cumulative_hazard(b.params),
        strict=True,
    ):
        np.testing.assert_allclose(h_b, h_a, rtol=1e-9)


def test_no_ties_efron_equals_breslow() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 2))
    time = rng.exponential(size=300)
    status = (rng.random(300) < 0.8).astype(float)
    efron = VectorisedPHReg(time, x, status=status, ties="efron").fit()
    breslow = VectorisedPHReg(time, x, status=status, ties="breslow").fit()
    np.testing.assert_allclose(efron.params, breslow.params, rtol=1e-12)
