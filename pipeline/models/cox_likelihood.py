"""statsmodels ``PHReg`` with the partial likelihood, score and Hessian vectorised.

statsmodels evaluates the Breslow and Efron partial likelihoods in a Python loop over
the distinct event times of each stratum, and builds its risk-set index lists in a
Python loop over the rows; with continuous times that is one iteration per event
(minutes per fit at 10^6 episodes). ``VectorisedPHReg`` keeps statsmodels as the
estimator (its Newton optimiser, ``PHRegResults``, covariance and summaries) and only
replaces those loops by cumulative sums over the time-sorted rows:

* risk-set sums S_k(t) = sum_{t_i >= t} r_i x_i^(k) are reverse cumulative sums read at
  the first row of each distinct event time;
* Efron's j-th term of a tie of d deaths at t uses S_k(t) - (j/d) D_k(t), D_k the sums
  over the tied deaths (Breslow: the same with j = 0);
* the Hessian's second-moment term sum_(t,j) S_2(t) / den_(t,j) is X' diag(r A) X with
  A_i the cumulative sum of 1/den over event times up to row i, so no p x p matrix is
  kept per event time.

The formulas are those of statsmodels' ``efron_loglike`` / ``efron_gradient`` /
``efron_hessian`` (and ``breslow_*``); tests/unit/test_cox_likelihood.py checks
agreement with them to 1e-8 and tests/reference checks the fits against R ``coxph``.
Left truncation (``entry``) is not vectorised: such models use plain ``PHReg``.

References
----------
Efron B. The efficiency of Cox's likelihood function for censored data. JASA 1977;72:557-565.
Therneau TM, Grambsch PM. Modeling Survival Data, Springer 2000, sections 3.3 and 3.4.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from statsmodels.base.model import LikelihoodModel
from statsmodels.duration.hazard_regression import PHReg


def _reverse_cumsum(a: np.ndarray) -> np.ndarray:
    return np.cumsum(a[::-1], axis=0)[::-1]


class SortedSurvivalTimes:
    """The parts of statsmodels' ``PHSurvivalTime`` that the fit uses, built vectorised.

    Same rows and order conventions: strata without events are dropped, and so are rows
    censored before their stratum's first event (they are in no risk set); rows are
    sorted by time within each stratum. The per-event-time index lists statsmodels keeps
    (``ufailt_ix``, ``risk_enter``, ``risk_exit``) are built only if something asks.
    """

    def __init__(
        self,
        time: np.ndarray,
        status: np.ndarray,
        exog: np.ndarray,
        strata: np.ndarray | None,
        offset: np.ndarray | None,
    ) -> None:
        if strata is None:
            strata = np.zeros(len(time), dtype=int)
        names, codes = np.unique(strata, return_inverse=True)
        rows, kept = [], []
        for code, name in enumerate(names):
            ix = np.flatnonzero(codes == code)
            failed = status[ix] == 1
            if not failed.any():
                continue
            ix = ix[time[ix] >= time[ix][failed].min()]
            rows.append(ix[np.argsort(time[ix], kind="stable")].astype(np.int32))
            kept.append(name)
        self.nstrat_orig = len(names)
        self.nstrat = len(rows)
        self.stratum_rows = rows
        self.stratum_names = kept
        self.n_obs = sum(len(ix) for ix in rows)
        self.time_s = [time[ix] for ix in rows]
        self.status_s = [status[ix] for ix in rows]
        self.exog_s = [exog[ix, :] for ix in rows]
        self.entry_s = [np.zeros(len(ix)) for ix in rows]
        self.offset_s = None if offset is None else [offset[ix] for ix in rows]
        self.events = [
            _EventIndex.build(t, d) for t, d in zip(self.time_s, self.status_s, strict=True)
        ]

    @property
    def ufailt(self) -> list[np.ndarray]:
        return [e.times for e in self.events]

    @cached_property
    def ufailt_ix(self) -> list[list[np.ndarray]]:
        return [np.split(e.rows.astype(np.int32), e.starts[1:]) for e in self.events]

    @cached_property
    def risk_enter(self) -> list[list[np.ndarray]]:
        out = []
        for t, e in zip(self.time_s, self.events, strict=True):
            k = np.searchsorted(e.times, t, "right") - 1  # t is sorted, so is k
            bounds = np.searchsorted(k, np.arange(1, len(e.times)))
            out.append(np.split(np.arange(len(t), dtype=np.int32), bounds))
        return out

    @cached_property
    def risk_exit(self) -> list[list[np.ndarray]]:
        # No left truncation: everyone is in the risk set from the first event time.
        return [
            [np.arange(len(t), dtype=np.int32)] + [np.zeros(0, np.int32)] * (len(e.times) - 1)
            for t, e in zip(self.time_s, self.events, strict=True)
        ]


@dataclass(frozen=True)
class _EventIndex:
    """Event bookkeeping of one stratum (rows sorted by time)."""

    times: np.ndarray  # distinct event times, ascending
    first_row: np.ndarray  # first row with time >= times[k]: the risk set is rows[first_row:]
    rows: np.ndarray  # rows of the events, by time
    group: np.ndarray  # distinct-time index of each event
    starts: np.ndarray  # position in ``rows`` where each distinct time's events begin
    share: np.ndarray  # Efron: j / d for the j-th (0-based) of d tied events

    @classmethod
    def build(cls, time: np.ndarray, status: np.ndarray) -> _EventIndex:
        rows = np.flatnonzero(status == 1)
        times, starts, counts = np.unique(time[rows], return_index=True, return_counts=True)
        group = np.repeat(np.arange(len(times)), counts)
        share = (np.arange(len(rows)) - starts[group]) / counts[group]
        first_row = np.searchsorted(time, times, side="left")
        return cls(times, first_row, rows, group, starts, share)


class VectorisedPHReg(PHReg):
    """``PHReg`` whose loglike/score/hessian are vectorised (see the module docstring)."""

    def __init__(self, endog, exog, status=None, strata=None, offset=None, ties="breslow"):
        if status is None:
            status = np.ones(len(endog))
        # hasconst=False: a Cox model has no intercept, and statsmodels' constant check
        # costs two SVDs of the design.
        LikelihoodModel.__init__(
            self,
            endog,
            exog,
            status=status,
            strata=strata,
            offset=offset,
            missing="drop",
            hasconst=False,
        )
        self.status = np.asarray(self.status)
        self.strata = None if self.strata is None else np.asarray(self.strata)
        self.offset = None if self.offset is None else np.asarray(self.offset)
        self.entry = None
        self.surv = SortedSurvivalTimes(
            np.asarray(self.endog, dtype=float),
            self.status,
            np.asarray(self.exog, dtype=float),
            self.strata,
            self.offset,
        )
        self.nobs = len(self.endog)
        self.groups = None
        self.missing = "drop"
        rank = np.linalg.matrix_rank(self.exog.T @ self.exog)
        self.df_resid = float(self.exog.shape[0] - rank)
        self.df_model = float(rank)
        if ties not in ("efron", "breslow"):
            raise ValueError(f"ties must be 'efron' or 'breslow', got {ties!r}")
        self.ties = ties

    def _linear_predictor(self, params: np.ndarray, stx: int) -> np.ndarray:
        eta = self.surv.exog_s[stx] @ params
        if self.surv.offset_s is not None:
            eta = eta + self.surv.offset_s[stx]
        return eta - eta.max()  # exp() cannot overflow; the likelihood is unchanged

    def _denominators(self, r: np.ndarray, ev: _EventIndex) -> tuple[np.ndarray, np.ndarray]:
        """Efron (or Breslow) share per event and its risk-set denominator."""
        share = ev.share if self.ties == "efron" else np.zeros(len(ev.rows))
        s0 = _reverse_cumsum(r)[ev.first_row][ev.group]
        d0 = np.add.reduceat(r[ev.rows], ev.starts)[ev.group]
        return share, s0 - share * d0

    def _moments(self, params: np.ndarray) -> list[tuple[np.ndarray, ...]]:
        """Per stratum: r, share, den and the weighted means; cached for the last params
        (Newton asks for the score and the Hessian at the same point)."""
        key = params.tobytes()
        if getattr(self, "_cache_key", None) == key:
            return self._cache
        out = []
        for stx in range(self.surv.nstrat):
            x, ev = self.surv.exog_s[stx], self.surv.events[stx]
            r = np.exp(self._linear_predictor(params, stx))
            share, den = self._denominators(r, ev)
            rd, xd = r[ev.rows], x[ev.rows]
            s1 = _reverse_cumsum(r[:, None] * x)[ev.first_row][ev.group]
            d1 = np.add.reduceat(rd[:, None] * xd, ev.starts, axis=0)[ev.group]
            mean = (s1 - share[:, None] * d1) / den[:, None]
            out.append((r, share, den, mean))
        self._cache_key, self._cache = key, out
        return out

    def loglike(self, params: np.ndarray) -> float:
        params = np.asarray(params, dtype=float)
        total = 0.0
        for stx in range(self.surv.nstrat):
            ev = self.surv.events[stx]
            eta = self._linear_predictor(params, stx)
            _, den = self._denominators(np.exp(eta), ev)
            total += eta[ev.rows].sum() - np.log(den).sum()
        return float(total)

    def score(self, params: np.ndarray) -> np.ndarray:
        params = np.asarray(params, dtype=float)
        total = np.zeros(len(params))
        for stx, (_, _, _, mean) in enumerate(self._moments(params)):
            ev = self.surv.events[stx]
            total += self.surv.exog_s[stx][ev.rows].sum(axis=0) - mean.sum(axis=0)
        return total

    def hessian(self, params: np.ndarray) -> np.ndarray:
        params = np.asarray(params, dtype=float)
        p = len(params)
        total = np.zeros((p, p))
        for stx, (r, share, den, mean) in enumerate(self._moments(params)):
            x, ev = self.surv.exog_s[stx], self.surv.events[stx]
            # sum over (t, j) of S2(t) / den = X' diag(r A) X, A_i = sum_{first_row <= i} a.
            a = np.bincount(ev.group, weights=1.0 / den, minlength=len(ev.times))
            per_row = np.zeros(len(r))
            np.add.at(per_row, ev.first_row, a)
            second = x.T @ ((r * np.cumsum(per_row))[:, None] * x)
            b = np.bincount(ev.group, weights=share / den, minlength=len(ev.times))[ev.group]
            xd = x[ev.rows]
            tied = xd.T @ ((r[ev.rows] * b)[:, None] * xd)
            total -= second - tied - mean.T @ mean
        return total
