"""Personalised relief curves from a fitted Cox model: S(t | x) = S0(t) ^ exp(x'beta).

Designed to work from stored tables, so a curve can be drawn for a run in the
warehouse without refitting: the coefficient table (``CoxResult.table``), the
baseline cumulative hazard (``baseline_hazard_table``) and the design means
(``design_means_table``).

Centring: the stored baseline is the hazard of a patient at the *design means*
(as R ``survfit.coxph`` and lifelines ``baseline_cumulative_hazard_``), and the
linear predictor is (x - mean)'beta. A baseline at x = 0 would be the hazard of a
patient with dose 0, baseline score 0, ... -- far outside the data, where
exp(x'beta) is extreme. statsmodels' ``PHReg.baseline_cumulative_hazard`` is at
x = 0 and, in statsmodels 0.15, is also lagged by one event time (it returns
``cumsum(h0) - h0``, i.e. H(t-)), so the Breslow sums are computed here.

References
----------
Breslow NE. Discussion of Cox (1972). JRSS B 1972;34:216-217 (baseline hazard).
Kalbfleisch JD, Prentice RL. The Statistical Analysis of Failure Time Data, 2nd ed.
2002, section 4.3 (estimating the baseline survival).
R: ``survival::survfit.coxph(fit, newdata, ctype = 1)``;
lifelines: ``CoxPHFitter.predict_survival_function``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from pipeline.models.cox import CoxResult

BASELINE_COLUMNS = ("stratum", "time", "cumhaz")
ALL_STRATA = "all"
DEFAULT_REFERENCE: dict[str, str] = {"route": "IV"}  # as pipeline.modelling.REFERENCE


def baseline_hazard_table(cox: CoxResult) -> pd.DataFrame:
    """Breslow cumulative baseline hazard at the design means, per stratum.

    H(t) = sum over event times s <= t of d(s) / sum_{risk set at s} exp((x - mean)'beta),
    right-continuous, one row per event time plus a last row at the stratum's
    last follow-up time (so readers know where the curve stops). The Breslow
    estimator is used for either ``ties`` choice, as lifelines does (R's
    ``survfit.coxph`` would use the Efron-weighted one after ``ties="efron"``).
    """
    x = cox.design.to_numpy(dtype=float)
    x = x - x.mean(axis=0)
    risk = np.exp(x @ np.asarray(cox.result.params, dtype=float))
    strata = np.full(len(x), ALL_STRATA) if cox.strata is None else cox.strata
    frames = []
    for level in np.unique(strata):
        rows = strata == level
        t, e, r = cox.time[rows], cox.event[rows], risk[rows]
        utime, inverse = np.unique(t, return_inverse=True)
        deaths = np.bincount(inverse, weights=e, minlength=len(utime))
        at_risk = np.cumsum(np.bincount(inverse, weights=r, minlength=len(utime))[::-1])[::-1]
        cumhaz = np.cumsum(deaths / at_risk)
        keep = deaths > 0
        keep[-1] = True
        frames.append(
            pd.DataFrame({"stratum": str(level), "time": utime[keep], "cumhaz": cumhaz[keep]})
        )
    return pd.concat(frames, ignore_index=True)[list(BASELINE_COLUMNS)]


def design_means_table(cox: CoxResult) -> pd.DataFrame:
    """Mean of each design column in the fitted rows (term, mean): the centring point."""
    means = cox.design.mean(axis=0)
    return pd.DataFrame({"term": means.index, "mean": means.to_numpy(dtype=float)})


def profile_vector(
    terms: list[str], profile: Mapping[str, Any], reference: Mapping[str, str] | None = None
) -> np.ndarray:
    """Design row for a profile keyed by covariate name (``route`` -> ``route[IM]``...).

    Raises ValueError naming unknown and missing keys, and a factor value that is
    neither a modelled level nor the reference level.
    """
    reference = {**DEFAULT_REFERENCE, **(reference or {})}
    factors: dict[str, list[str]] = {}
    for term in terms:
        if "[" in term and term.endswith("]"):
            name, level = term[:-1].split("[", 1)
            factors.setdefault(name, []).append(level)
    covariates = [t for t in terms if "[" not in t] + list(factors)
    unknown = sorted(set(profile) - set(covariates))
    missing = sorted(set(covariates) - set(profile))
    if unknown or missing:
        raise ValueError(
            f"profile does not match the model: unknown keys {unknown}, missing keys {missing}"
            f" (model covariates: {sorted(covariates)})"
        )
    row = []
    for term in terms:
        if "[" in term and term.endswith("]"):
            name, level = term[:-1].split("[", 1)
            value = str(profile[name])
            allowed = [*factors[name], *([reference[name]] if name in reference else [])]
            if value not in allowed:
                raise ValueError(f"profile {name}={value!r} is not one of {allowed}")
            row.append(1.0 if value == level else 0.0)
        else:
            value = profile[term]
            if isinstance(value, str) and value.lower() in ("true", "false"):
                value = value.lower() == "true"
            try:
                row.append(float(value))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"profile {term}={value!r} is not a number") from exc
    return np.array(row)


def predict_from_tables(
    coef_table: pd.DataFrame,
    baseline: pd.DataFrame,
    design_means: pd.DataFrame,
    profile: Mapping[str, Any],
    stratum: str | None = None,
    reference: Mapping[str, str] | None = None,
    horizons: tuple[float, float] = (30.0, 90.0),
) -> tuple[pd.DataFrame, dict[str, float]]:
    """S(t | profile) = exp(-H(t) exp((x - mean)'beta)) from stored tables.

    Returns the step curve (time, survival; from time 0) and a summary: ``median``
    (first time S <= 0.5, NaN if not reached), ``p30`` / ``p90`` (probability that
    relief still lasts at the ``horizons`` days; NaN past the last follow-up).
    """
    terms = list(coef_table["term"])
    means = design_means.set_index("term")["mean"]
    if set(terms) != set(means.index):
        raise ValueError("coefficient table and design means name different terms")
    x = profile_vector(terms, profile, reference)
    beta = coef_table["coef"].to_numpy(dtype=float)
    lp = float((x - means.loc[terms].to_numpy(dtype=float)) @ beta)
    levels = baseline["stratum"].astype(str).unique()
    if stratum is None:
        if len(levels) > 1:
            raise ValueError(f"the model is stratified; choose a stratum from {sorted(levels)}")
        stratum = levels[0]
    base = baseline[baseline["stratum"].astype(str) == str(stratum)]
    if base.empty:
        raise ValueError(f"stratum {stratum!r} is not in the baseline (have {sorted(levels)})")
    time = np.concatenate(([0.0], base["time"].to_numpy(dtype=float)))
    surv = np.exp(-np.concatenate(([0.0], base["cumhaz"].to_numpy(dtype=float))) * np.exp(lp))
    curve = pd.DataFrame({"time": time, "survival": surv})
    below = np.flatnonzero(surv <= 0.5)
    summary = {"median": float(time[below[0]]) if len(below) else float("nan")}
    for key, day in zip(("p30", "p90"), horizons, strict=True):
        summary[key] = survival_at(curve, day)
    return curve, summary


def survival_at(curve: pd.DataFrame, day: float) -> float:
    """The step curve read at ``day`` (last time <= day); NaN past its last time."""
    t = curve["time"].to_numpy()
    if day > t[-1]:
        return float("nan")
    return float(curve["survival"].iloc[np.searchsorted(t, day, side="right") - 1])


def predict_profile(
    cox: CoxResult,
    profile: Mapping[str, Any],
    stratum: str | None = None,
    reference: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Personalised relief curve for ``profile`` from a fitted model (via the tables)."""
    return predict_from_tables(
        cox.table,
        baseline_hazard_table(cox),
        design_means_table(cox),
        profile,
        stratum=stratum,
        reference=reference,
    )
