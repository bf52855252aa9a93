"""Test of the proportional hazards assumption, as R's ``survival::cox.zph`` (>= 3.0).

For each term the test asks whether adding ``x * g(t)`` to the fitted Cox model
improves it, where g is a transform of time (KM by default). Since survival 3.0
``cox.zph`` computes this as a score test at (beta_hat, 0) with the full
2p x 2p information matrix (C routine ``zph1``), rather than the older
correlation of scaled Schoenfeld residuals with g(t) (Grambsch & Therneau's
one-step approximation); the two can differ noticeably, so this module follows
the 3.x computation, including Efron weighting of tied deaths.

References
----------
Grambsch PM, Therneau TM. Proportional hazards tests and diagnostics based on
weighted residuals. Biometrika 1994;81:515-526.
Therneau TM, Grambsch PM. Modeling Survival Data, Springer 2000, section 6.2.
Therneau TM. survival: R package, ``cox.zph`` and ``src/zph1.c`` (version 3.x).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import chi2, rankdata
from statsmodels.duration.survfunc import SurvfuncRight

from pipeline.models.cox import CoxResult
from pipeline.models.cox_likelihood import _EventIndex

PH_TEST_COLUMNS = ("term", "statistic", "df", "p")


def _time_transform(time: np.ndarray, event: np.ndarray, transform: str) -> np.ndarray:
    """g(t) per observation as ``cox.zph``: "km" is 1 - S(t-) from the pooled KM."""
    if transform == "identity":
        return time.astype(float)
    if transform == "log":
        return np.log(time)
    if transform == "rank":
        return rankdata(time, method="average")
    if transform == "km":
        sf = SurvfuncRight(time, event)
        idx = np.searchsorted(sf.surv_times, time, side="left")  # event times strictly < t
        return 1.0 - np.concatenate(([1.0], sf.surv_prob))[idx]
    raise ValueError(f"transform must be 'km', 'rank', 'identity' or 'log', got {transform!r}")


def _score_and_information(
    x: np.ndarray, time: np.ndarray, event: np.ndarray, eta: np.ndarray, g: np.ndarray, efron: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Score vector (2p) and information (2p x 2p) for beta and the x*g(t) terms in one
    stratum, at (beta_hat, 0). Follows survival's ``zph1.c``, vectorised over event times
    as ``VectorisedPHReg``: the information is sum over tied-death terms (t, j) of
    w(t) V(t, j), w in {1, g, g^2}, with V the Efron-weighted risk-set covariance."""
    p = x.shape[1]
    order = np.argsort(time, kind="stable")
    x, time, event, eta, g = x[order], time[order], event[order], eta[order], g[order]
    ev = _EventIndex.build(time, event)
    if len(ev.rows) == 0:
        return np.zeros(2 * p), np.zeros((2 * p, 2 * p))
    r = np.exp(eta - eta.max())
    share = ev.share if efron else np.zeros(len(ev.rows))
    rd, xd = r[ev.rows], x[ev.rows]
    s0 = np.cumsum(r[::-1])[::-1][ev.first_row][ev.group]
    s1 = np.cumsum((r[:, None] * x)[::-1], axis=0)[::-1][ev.first_row][ev.group]
    d0 = np.add.reduceat(rd, ev.starts)[ev.group]
    d1 = np.add.reduceat(rd[:, None] * xd, ev.starts, axis=0)[ev.group]
    den = s0 - share * d0
    mean = (s1 - share[:, None] * d1) / den[:, None]
    gt = g[ev.rows]
    resid = xd - mean
    u = np.concatenate((resid.sum(axis=0), (gt[:, None] * resid).sum(axis=0)))
    n_times = len(ev.times)

    def information(w: np.ndarray) -> np.ndarray:
        a = np.bincount(ev.group, weights=w / den, minlength=n_times)
        per_row = np.zeros(len(r))
        np.add.at(per_row, ev.first_row, a)
        second = x.T @ ((r * np.cumsum(per_row))[:, None] * x)
        b = np.bincount(ev.group, weights=w * share / den, minlength=n_times)[ev.group]
        tied = xd.T @ ((rd * b)[:, None] * xd)
        return second - tied - mean.T @ (w[:, None] * mean)

    v0, v1, v2 = information(np.ones(len(gt))), information(gt), information(gt * gt)
    info = np.block([[v0, v1], [v1.T, v2]])
    return u, info


def ph_test(cox: CoxResult, transform: str = "km") -> pd.DataFrame:
    """Grambsch-Therneau test of proportional hazards per covariate, plus GLOBAL,
    as R ``cox.zph(fit, transform = transform)`` from survival >= 3.0.

    For a covariate with columns J the statistic is the score test
    U' I^-1 U with U = (0, u_J) and I the information restricted to
    (beta, gamma_J); a factor is tested jointly on all its dummies (df = number
    of dummies, as ``cox.zph(terms = TRUE)``). GLOBAL tests all gamma at once.
    g(t) is computed over all rows, ignoring strata, as R does; the score and
    information are summed over strata.
    """
    x = cox.design.to_numpy(dtype=float)
    x = x - x.mean(axis=0)
    beta = np.asarray(cox.result.params, dtype=float)
    eta = x @ beta
    g = _time_transform(cox.time, cox.event, transform)
    g = g - g[cox.event == 1].mean()
    efron = cox.ties == "efron"
    p = x.shape[1]
    strata = np.zeros(len(x)) if cox.strata is None else cox.strata
    u = np.zeros(2 * p)
    info = np.zeros((2 * p, 2 * p))
    for level in np.unique(strata):
        rows = strata == level
        u_s, i_s = _score_and_information(
            x[rows], cox.time[rows], cox.event[rows], eta[rows], g[rows], efron
        )
        u += u_s
        info += i_s

    columns = list(cox.design.columns)
    tests = []
    for term, cols in [*cox.assign.items(), ("GLOBAL", columns)]:
        jj = [columns.index(c) for c in cols]
        keep = list(range(p)) + [p + j for j in jj]
        score = np.concatenate((np.zeros(p), u[[p + j for j in jj]]))
        stat = float(score @ np.linalg.solve(info[np.ix_(keep, keep)], score))
        tests.append((term, stat, len(jj), float(chi2.sf(stat, len(jj)))))
    return pd.DataFrame(tests, columns=list(PH_TEST_COLUMNS))
