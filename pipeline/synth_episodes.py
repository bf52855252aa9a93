"""Treatment series, true pain-return times and pain-diary visits for the synthetic cohort.

Everything is simulated on an integer-minute clock relative to each patient's first
baseline visit, so that the derivation (series gap <= 7 days, 14-day baseline window,
follow-ups strictly after the origin and strictly before the next series) gives back
exactly the series, baselines and episodes simulated here; ``pipeline.synth`` later
shifts every patient to a calendar date. The loop runs once per series number (1..3),
each step vectorised over all patients that have that series.

Choice for responders whose true return time T falls before the first diary visit:
T is drawn unconditionally from the Weibull model and such episodes simply look like
non-responders after derivation (rare: the first visit is 0.5-1.5 days after the
origin). Rejection sampling would left-truncate T and bias the truth instead.

The baseline visit of series s+1 (clinic hours, ~1.7-7.3 days before it) is also the
last follow-up of series s under the derivation, so its score reflects the true state
of series s: relieved -> [4, floor(0.7 b)], else near b. A patient still relieved with
b < 6 cannot satisfy both and would not return anyway, so gets no further series.
Retreatment is either scheduled 10-60 days after the diary ends (pain back or diary
stopped) or, for 60 % of b >= 6 episodes with a planned next series, 14-90 days after
the origin independently of T (censoring non-informative given covariates); ~10 % of
next series then start while the patient is still relieved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_PER_DAY = 1440
ROUTES = np.array(["IV", "IM", "IN"])
ROUTE_P = (0.55, 0.20, 0.25)
DOSE_LO = np.array([0.1, 0.2, 0.2])  # mg/kg per administration, by route index
DOSE_HI = np.array([1.0, 1.0, 1.0])
MAX_ADMIN = 6
P_SINGLE = 0.55
SERIES_P = (0.5, 0.3, 0.2)  # planned number of series 1, 2, 3
NON_RESPONDER_SHARE = 0.20
# An e-diary prompted about daily, answered at irregular times of day.
DIARY_GAP_DAYS = (0.5, 1.5)
MISSED_VISIT_P = 0.15
DROPOUT_MEAN_DAYS = 120.0
MAX_FOLLOW_UP_DAYS = 365.0
RETREAT_WHILE_RELIEVED_P = 0.6  # retreatment scheduled independently of pain (b >= 6)

WEIBULL_SHAPE = 1.3
TYPICAL_MEDIAN_DAYS = 21.0
LOG_HR: dict[str, float] = {
    "route[IM]": 0.3,
    "route[IN]": 0.5,
    "is_series": -0.5,
    "dose_mg_per_kg": -0.8,
    "infusion_hours": -0.15,
    "n_comorbidities": 0.2,
    "baseline_score": 0.1,
}
# "Typical IV single infusion" whose median time to pain return is TYPICAL_MEDIAN_DAYS.
REFERENCE_PROFILE: dict[str, float] = {
    "route[IM]": 0.0,
    "route[IN]": 0.0,
    "is_series": 0.0,
    "dose_mg_per_kg": 0.5,
    "infusion_hours": 2.0,
    "n_comorbidities": 1.0,
    "baseline_score": 7.0,
}


def weibull_scale() -> float:
    """Scale lambda so that S(median | reference profile) = 0.5 under the PH Weibull."""
    eta_ref = sum(LOG_HR[k] * v for k, v in REFERENCE_PROFILE.items())
    return TYPICAL_MEDIAN_DAYS * (np.exp(eta_ref) / np.log(2.0)) ** (1.0 / WEIBULL_SHAPE)


@dataclass
class Simulated:
    """Flat arrays of the simulated cohort (patient indices are 0-based)."""

    treatments: dict[str, np.ndarray]  # patient, start_min, duration_min, route, dose_mg
    assessments: dict[str, np.ndarray]  # patient, at_min, score, fu_episode (-1 = none)
    episodes: dict[str, np.ndarray]  # one entry per (patient, series)


def _snap_to_clinic(rng: np.random.Generator, minute: np.ndarray) -> np.ndarray:
    """Move a time to the same day between 08:00 and 16:00: clinics run day shifts."""
    return (minute // MIN_PER_DAY) * MIN_PER_DAY + rng.integers(8 * 60, 16 * 60 + 1, minute.size)


def _days_to_min(days: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(days) * MIN_PER_DAY).astype(np.int64)


def _relieved_score(rng: np.random.Generator, b: np.ndarray) -> np.ndarray:
    """Score with a relative reduction >= 30 %: typically 20-60 % of baseline."""
    hi = np.floor(0.7 * b - 1e-9)
    return np.clip(np.round(b * rng.uniform(0.2, 0.6, b.size)), 0, hi).astype(np.int64)


def _pain_back_score(rng: np.random.Generator, b: np.ndarray, floor: int = 0) -> np.ndarray:
    """Score near baseline with a relative reduction < 30 % (not relieved)."""
    lo = np.maximum(np.ceil(0.7 * b + 1e-9), floor)
    return np.clip(np.round(b + rng.normal(0.0, 1.0, b.size)), lo, 10).astype(np.int64)


def _administrations(rng: np.random.Generator, start: np.ndarray, weight: np.ndarray) -> dict:
    """Route, doses and lengths of one series per row; padded to MAX_ADMIN columns."""
    m = start.size
    n_adm = np.where(rng.random(m) < P_SINGLE, 1, rng.integers(2, MAX_ADMIN + 1, m))
    gaps = rng.integers(1, 5, (m, MAX_ADMIN))
    gaps[:, 0] = 0
    tod = rng.integers(8 * 60, 16 * 60 + 1, (m, MAX_ADMIN))
    tod[:, 0] = start % MIN_PER_DAY
    adm_start = (start[:, None] // MIN_PER_DAY + np.cumsum(gaps, axis=1)) * MIN_PER_DAY + tod
    mask = np.arange(MAX_ADMIN)[None, :] < n_adm[:, None]
    route = rng.choice(3, m, p=ROUTE_P)
    lo, hi = DOSE_LO[route][:, None], DOSE_HI[route][:, None]
    level = rng.uniform(DOSE_LO[route], DOSE_HI[route])
    mgkg = np.clip(level[:, None] + rng.normal(0.0, 0.03, (m, MAX_ADMIN)), lo, hi)
    dose = np.round(mgkg * weight[:, None], 1)
    iv_base = rng.integers(6, 49, m) * 5  # 30..240 min
    iv = np.clip(iv_base[:, None] + 5 * rng.integers(-2, 3, (m, MAX_ADMIN)), 30, 240)
    im = rng.integers(1, 3, (m, MAX_ADMIN))
    in_ = rng.integers(2, 11, (m, MAX_ADMIN))
    dur = np.where(route[:, None] == 0, iv, np.where(route[:, None] == 1, im, in_))
    rows = np.arange(m)
    origin = adm_start[rows, n_adm - 1] + dur[rows, n_adm - 1]
    # Covariates exactly as the derivation computes them from the delivered values.
    dose_per_kg = ((dose / weight[:, None]) * mask).sum(axis=1) / n_adm
    infusion_hours = (dur * mask).sum(axis=1) / n_adm / 60.0
    return {
        "n_adm": n_adm,
        "mask": mask,
        "adm_start": adm_start,
        "dur": dur,
        "dose": dose,
        "route": route,
        "origin": origin,
        "dose_mg_per_kg": dose_per_kg,
        "infusion_hours": infusion_hours,
    }


def _diary(
    rng: np.random.Generator,
    origin: np.ndarray,
    horizon: np.ndarray,
    resp: np.ndarray,
    t_true: np.ndarray,
    b: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Irregular diary visits after the origin; returns (episode row, minute, score)."""
    first = rng.uniform(0.5, 1.5, horizon.size)
    # Responders keep only a few visits after the return, so no slots are needed far beyond it.
    span = np.where(resp, np.minimum(horizon, t_true + 8 * DIARY_GAP_DAYS[1]), horizon)
    n_slots = np.where(
        span >= first, np.floor((span - first) / DIARY_GAP_DAYS[0]).astype(np.int64) + 1, 0
    )
    ep = np.repeat(np.arange(horizon.size), n_slots)
    gaps = rng.uniform(*DIARY_GAP_DAYS, ep.size)
    starts = np.cumsum(n_slots) - n_slots
    is_first = np.zeros(ep.size, dtype=bool)
    is_first[starts[n_slots > 0]] = True
    gaps[is_first] = first[n_slots > 0]
    cs = np.cumsum(gaps)
    t = cs - np.repeat(cs[starts[n_slots > 0]] - gaps[is_first], n_slots[n_slots > 0])
    rel_min = _days_to_min(t)
    missed = rng.random(ep.size) < MISSED_VISIT_P
    keep = (t <= horizon[ep]) & (is_first | ~missed)
    ep, rel_min = ep[keep], rel_min[keep]
    after = rel_min / MIN_PER_DAY > t_true[ep]
    # Responders: keep the return visit plus 1-3 more "pain back" visits.
    extra = rng.integers(1, 4, horizon.size)
    n_after = _group_cumsum(after.astype(np.int64), ep)
    keep = ~resp[ep] | (n_after <= 1 + extra[ep])
    ep, rel_min = ep[keep], rel_min[keep]
    at = _waking_hours(origin[ep] + rel_min, origin[ep] + MIN_PER_DAY // 2)
    after = (at - origin[ep]) / MIN_PER_DAY > t_true[ep]
    relieved = resp[ep] & ~after
    score = np.where(relieved, _relieved_score(rng, b[ep]), _pain_back_score(rng, b[ep]))
    return ep, at, score


def _waking_hours(at: np.ndarray, not_before: np.ndarray) -> np.ndarray:
    """Squeeze each time of day into 07:00-22:00 (people log pain while awake).

    Monotone within a day, so visit order is kept; the first visit may move to before
    origin + 0.5 day, hence ``not_before`` keeps it strictly after the origin.
    """
    day, tod = np.divmod(at, MIN_PER_DAY)
    return np.maximum(day * MIN_PER_DAY + 7 * 60 + tod * 15 * 60 // MIN_PER_DAY, not_before)


def _group_cumsum(x: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Cumulative sum within runs of equal, contiguous group labels."""
    cs = np.cumsum(x)
    new = np.ones(group.size, dtype=bool)
    new[1:] = group[1:] != group[:-1]
    base = np.maximum.accumulate(np.where(new, np.arange(group.size), 0))
    return cs - cs[base] + x[base]


def simulate(rng: np.random.Generator, weight: np.ndarray, n_comorb: np.ndarray) -> Simulated:
    """Simulate 1-3 series per patient, their true return times and all assessments."""
    n = weight.size
    n_series = rng.choice(np.arange(1, 4), n, p=SERIES_P)
    scale = weibull_scale()
    beta = np.array(list(LOG_HR.values()))
    idx = np.arange(n)
    start = _snap_to_clinic(rng, np.full(n, 8 * MIN_PER_DAY))
    base_at = _snap_to_clinic(rng, start - _days_to_min(rng.uniform(2.0, 7.0, n)))
    b = rng.choice(np.arange(4, 10), n, p=(0.08, 0.14, 0.2, 0.24, 0.2, 0.14))
    tr, asm, eps = [], [], []
    asm.append((idx, base_at, b, np.full(n, -1)))
    ep_offset = 0
    for s in range(3):
        m = idx.size
        if m == 0:
            break
        a = _administrations(rng, start, weight[idx])
        mask = a["mask"]
        tr.append(
            (
                np.broadcast_to(idx[:, None], mask.shape)[mask],
                a["adm_start"][mask],
                a["dur"][mask],
                np.broadcast_to(a["route"][:, None], mask.shape)[mask],
                a["dose"][mask],
            )
        )
        x = np.column_stack(
            [
                a["route"] == 1,
                a["route"] == 2,
                a["n_adm"] > 1,
                a["dose_mg_per_kg"],
                a["infusion_hours"],
                n_comorb[idx],
                b,
            ]
        ).astype(float)
        eta = x @ beta
        resp = rng.random(m) >= NON_RESPONDER_SHARE
        t_true = scale * (rng.exponential(1.0, m) / np.exp(eta)) ** (1.0 / WEIBULL_SHAPE)
        dropout = rng.exponential(DROPOUT_MEAN_DAYS, m)
        origin = a["origin"]
        planned_next = n_series[idx] > s + 1
        indep = planned_next & (b >= 6) & (rng.random(m) < RETREAT_WHILE_RELIEVED_P)
        start_r = _snap_to_clinic(rng, origin + _days_to_min(rng.uniform(14.0, 90.0, m)))
        base_r = _snap_to_clinic(rng, start_r - _days_to_min(rng.uniform(2.0, 7.0, m)))
        cap = np.where(indep, (base_r - origin) / MIN_PER_DAY - 0.5, np.inf)
        own = np.where(resp, t_true + 30.0, rng.uniform(7.0, 28.0, m))
        horizon = np.minimum.reduce([dropout, np.full(m, MAX_FOLLOW_UP_DAYS), cap, own])
        ep, at, score = _diary(rng, origin, horizon, resp, t_true, b)
        asm.append((idx[ep], at, score, ep_offset + ep))
        last = origin.copy()
        np.maximum.at(last, ep, at)
        start_n = _snap_to_clinic(rng, last + _days_to_min(rng.uniform(11.5, 60.0, m)))
        base_n = _snap_to_clinic(rng, start_n - _days_to_min(rng.uniform(2.0, 7.0, m)))
        start_n, base_n = np.where(indep, start_r, start_n), np.where(indep, base_r, base_n)
        relieved_at_base = resp & ((base_n - origin) / MIN_PER_DAY <= t_true)
        # A patient still relieved with baseline < 6 cannot present with a new baseline
        # >= 4 that is also "relieved", and would not come back anyway: no more series.
        has_next = planned_next & ~(relieved_at_base & (b < 6))
        hi = np.floor(0.7 * b - 1e-9).astype(np.int64)
        b_next = np.where(
            relieved_at_base,
            rng.integers(4, np.maximum(hi, 4) + 1),
            np.minimum(_pain_back_score(rng, b, floor=4), 9),
        )
        asm.append(
            (
                idx[has_next],
                base_n[has_next],
                b_next[has_next],
                ep_offset + np.flatnonzero(has_next),
            )
        )
        eps.append(
            {
                "patient": idx,
                "series_no": np.full(m, s + 1),
                "route": ROUTES[a["route"]],
                "n_administrations": a["n_adm"],
                "is_series": a["n_adm"] > 1,
                "dose_mg_per_kg": a["dose_mg_per_kg"],
                "infusion_hours": a["infusion_hours"],
                "n_comorbidities": n_comorb[idx],
                "baseline_score": b,
                "linear_predictor": eta,
                "responder": resp,
                "true_return_days": t_true,
                "dropout_days": dropout,
                "retreat_scheduled": indep,
                "has_next_series": has_next,
                "series_start_min": start,
                "origin_min": origin,
            }
        )
        ep_offset += m
        idx, start, b = idx[has_next], start_n[has_next], b_next[has_next]
    return Simulated(
        treatments=_stack(tr, ("patient", "start_min", "duration_min", "route", "dose_mg")),
        assessments=_stack(asm, ("patient", "at_min", "score", "fu_episode")),
        episodes={k: np.concatenate([e[k] for e in eps]) for k in eps[0]},
    )


def _stack(chunks: list[tuple], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([c[i] for c in chunks]) for i, name in enumerate(names)}
