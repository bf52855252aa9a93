"""Synthetic landing deliveries with a known truth, for tests, demos and benchmarks.

Why: the pipeline estimates how long ketamine pain relief lasts; the only way to show
it gets that right is data whose true answer is known. Times to pain return follow a
proportional-hazards Weibull model on exactly the episode covariates the derivation
computes, so a correct pipeline recovers ``truth.json``'s log hazard ratios.

Determinism: one ``numpy.random.default_rng(seed)`` drives everything, times are
integer minutes from a fixed calendar origin, rows are sorted, floats are written with
a fixed format, so the same seed gives byte-identical files. Simulation details (and
the choice for responders whose pain is back before the first diary visit) are in
``pipeline.synth_episodes``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.schema import LANDING_REQUIRED
from pipeline.synth_episodes import (
    LOG_HR,
    MIN_PER_DAY,
    NON_RESPONDER_SHARE,
    REFERENCE_PROFILE,
    TYPICAL_MEDIAN_DAYS,
    WEIBULL_SHAPE,
    simulate,
    weibull_scale,
)
from pipeline.synth_expected import expected_outcomes

CALENDAR_START = np.datetime64("2021-01-01T00:00", "m")
CALENDAR_END = np.datetime64("2025-12-31T23:59", "m")
CONDITIONS = np.array(["CRPS", "fibromyalgia", "neuropathic", "migraine", "low_back_pain"])
CONDITION_P = (0.2, 0.2, 0.25, 0.15, 0.2)
# depression, anxiety, hypertension, type 2 diabetes, insomnia, opioid use disorder
COMORBIDITY_CODES = np.array(["F32.9", "F41.1", "I10", "E11.9", "G47.00", "F11.20"])
N_COMORB_P = (0.3, 0.3, 0.2, 0.12, 0.08)
SITES = np.array([f"S0{i}" for i in range(1, 6)])
SEVERITIES = np.array(["mild", "moderate", "severe"])
SEVERITY_P = (0.70, 0.25, 0.05)

Frames = dict[str, pd.DataFrame]


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    return (prefix + pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(width)).to_numpy()


def _iso(minutes: np.ndarray) -> np.ndarray:
    """ISO-8601 UTC without offset, e.g. 2023-04-05T09:30:00."""
    stamps = (CALENDAR_START + minutes.astype("timedelta64[m]")).astype("datetime64[s]")
    return np.datetime_as_string(stamps, unit="s")


def _patients(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Demographics; also returns weight (kg, constant per patient) and comorbidity count."""
    n_comorb = rng.choice(np.arange(5), n, p=N_COMORB_P)
    # Random distinct codes per patient: the first k of a random permutation, kept in
    # the fixed code order so the string is canonical.
    rank = np.argsort(rng.random((n, COMORBIDITY_CODES.size)), axis=1).argsort(axis=1)
    chosen = rank < n_comorb[:, None]
    text = np.full(n, "", dtype=object)
    for j, code in enumerate(COMORBIDITY_CODES):
        text = np.where(chosen[:, j], text + code + ";", text)
    comorbidities = pd.Series(text).str.rstrip(";").to_numpy()
    frame = pd.DataFrame(
        {
            "patient_id": _ids("P", n, 6),
            "sex": np.where(rng.random(n) < 0.6, "F", "M"),
            "birth_year": rng.integers(1940, 2004, n),
            "primary_condition": rng.choice(CONDITIONS, n, p=CONDITION_P),
            "comorbidities": comorbidities,
            "site_id": rng.choice(SITES, n),
        }
    )
    weight = np.round(np.clip(rng.normal(78.0, 16.0, n), 45.0, 130.0), 1)
    return frame, weight, n_comorb


def _adverse_events(rng: np.random.Generator, tr: pd.DataFrame) -> pd.DataFrame:
    """Per-administration events; dissociation and nausea rise with mg/kg."""
    z = (tr["dose_mg"] / tr["weight_kg"]).clip(0.1, 1.0).to_numpy()
    z = (z - 0.1) / 0.9  # 0 at 0.1 mg/kg, 1 at 1.0 mg/kg
    iv = (tr["route"] == "IV").to_numpy()
    probs = {
        "dissociation": 0.10 + 0.25 * z,
        "nausea": 0.05 + 0.10 * z,
        "hypertension": np.where(iv, 0.03 + 0.05 * z, 0.02 + 0.02 * z),
        "hallucination": 0.02 + 0.03 * z,
        "euphoria": 0.02 + 0.04 * z,
    }
    parts = []
    for event, p in probs.items():
        hit = np.flatnonzero(rng.random(len(tr)) < p)
        offset = rng.integers(0, tr["duration_min"].to_numpy()[hit] + 1)
        parts.append(
            pd.DataFrame(
                {
                    "row": hit,
                    "event": event,
                    "at_min": tr["start_min"].to_numpy()[hit] + offset,
                    "severity": rng.choice(SEVERITIES, hit.size, p=SEVERITY_P),
                }
            )
        )
    ae = pd.concat(parts, ignore_index=True).sort_values(["row", "at_min", "event"])
    src = tr.iloc[ae["row"].to_numpy()]
    return pd.DataFrame(
        {
            "treatment_id": src["treatment_id"].to_numpy(),
            "patient_id": src["patient_id"].to_numpy(),
            "recorded_at": _iso(ae["at_min"].to_numpy()),
            "event": ae["event"].to_numpy(),
            "severity": ae["severity"].to_numpy(),
        }
    )


def _build(patients: int, seed: int) -> tuple[Frames, dict[str, Any], pd.DataFrame]:
    if patients < 1:
        raise ValueError(f"patients must be >= 1, got {patients}")
    rng = np.random.default_rng(seed)
    pat, weight, n_comorb = _patients(rng, patients)
    sim = simulate(rng, weight, n_comorb)
    t, a = sim.treatments, sim.assessments

    # Place each patient's whole history at a random calendar offset (whole days, so
    # clinic hours are preserved) such that everything lies in 2021-2025.
    last = np.zeros(patients, dtype=np.int64)
    np.maximum.at(last, t["patient"], t["start_min"] + t["duration_min"])
    np.maximum.at(last, a["patient"], a["at_min"])
    room = (CALENDAR_END - CALENDAR_START).astype(np.int64) - last
    if (room < 0).any():
        raise AssertionError("a simulated history is longer than the 2021-2025 window")
    shift = np.floor(rng.random(patients) * (room // MIN_PER_DAY + 1)).astype(np.int64)
    shift *= MIN_PER_DAY

    pid = pat["patient_id"].to_numpy()
    order = np.lexsort((t["start_min"], t["patient"]))
    start = t["start_min"][order] + shift[t["patient"][order]]
    tr = pd.DataFrame(
        {
            "treatment_id": _ids("T", order.size, 7),
            "patient_id": pid[t["patient"][order]],
            "administered_at": _iso(start),
            "duration_min": t["duration_min"][order].astype(np.int64),
            "route": np.array(["IV", "IM", "IN"])[t["route"][order]],
            "dose_mg": t["dose_mg"][order],
            "weight_kg": weight[t["patient"][order]],
            "start_min": start,
        }
    )
    ae = _adverse_events(rng, tr)
    order = np.lexsort((a["at_min"], a["patient"]))
    pain = pd.DataFrame(
        {
            "assessment_id": _ids("A", order.size, 8),
            "patient_id": pid[a["patient"][order]],
            "assessed_at": _iso(a["at_min"][order] + shift[a["patient"][order]]),
            "pain_score": a["score"][order].astype(np.int64),
        }
    )
    frames = {
        "patients": pat,
        "treatments": tr[list(LANDING_REQUIRED["treatments"])],
        "pain_assessments": pain,
        "adverse_events": ae,
    }
    episodes = _episodes(sim.episodes, a, pid, shift)
    truth = _truth(patients, seed, episodes)
    return frames, truth, episodes


def _episodes(
    e: dict[str, np.ndarray], a: dict[str, np.ndarray], pid: np.ndarray, shift: np.ndarray
) -> pd.DataFrame:
    ep = pd.DataFrame(e)
    ep.insert(0, "episode", np.arange(len(ep)))
    fu_mask = a["fu_episode"] >= 0
    fu = pd.DataFrame(
        {
            "episode": a["fu_episode"][fu_mask],
            "at_min": a["at_min"][fu_mask],
            "score": a["score"][fu_mask],
        }
    )
    ep = expected_outcomes(ep, fu)
    patient = ep.pop("patient").to_numpy()
    ep.insert(1, "patient_id", pid[patient])
    ep["series_start"] = _iso(ep.pop("series_start_min").to_numpy() + shift[patient])
    ep["origin"] = _iso(ep.pop("origin_min").to_numpy() + shift[patient])
    ep = ep.sort_values(["patient_id", "series_no"]).drop(columns="episode")
    return ep.reset_index(drop=True)


def _truth(patients: int, seed: int, ep: pd.DataFrame) -> dict[str, Any]:
    return {
        "seed": seed,
        "patients": patients,
        "log_hazard_ratios": dict(LOG_HR),
        "weibull": {"shape": WEIBULL_SHAPE, "scale": round(float(weibull_scale()), 6)},
        "reference_profile": dict(REFERENCE_PROFILE),
        "reference_median_days": TYPICAL_MEDIAN_DAYS,
        "non_responder_share": NON_RESPONDER_SHARE,
        "time_unit": "days since the end of the last administration of the series",
        "episodes": len(ep),
        "episodes_responded_derived": int(ep["expected_responded"].sum()),
        "notes": (
            "Responders' time to pain return T ~ PH Weibull: S(t|x) = exp(-(t/scale)^shape"
            " * exp(sum(beta*x))), x = route (ref IV), is_series, dose_mg_per_kg (mean"
            " dose_mg/weight_kg), infusion_hours (mean duration_min/60), n_comorbidities,"
            " baseline_score. Responder status is independent of covariates. T is not"
            " conditioned on the first diary visit: a responder whose pain is back before"
            " it looks like a non-responder. Observation is by irregular diary visits"
            " (15 % missed), censored by drop-out (exponential, mean 120 days), 365 days"
            " of follow-up, or a new series."
        ),
    }


def generate(patients: int, seed: int) -> tuple[Frames, dict[str, Any]]:
    """Landing frames (columns exactly as ``LANDING_REQUIRED``) and the truth dict."""
    frames, truth, _ = _build(patients, seed)
    return frames, truth


def true_episodes(patients: int, seed: int) -> pd.DataFrame:
    """Per-episode ground truth (true T, covariates, expected derived outcomes)."""
    return _build(patients, seed)[2]


ID_COLUMNS = ("patient_id", "treatment_id", "assessment_id")


def write_delivery(
    out_dir: Path, patients: int, seed: int, fmt: str = "csv", id_prefix: str = ""
) -> Path:
    """Write one landing delivery (four tables + truth.json) into ``out_dir``.

    ``id_prefix`` is put in front of every patient, treatment and assessment id, so a
    second delivery can hold new patients (an incremental night) instead of corrections
    of the first delivery's patients.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', got {fmt!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frames, truth = generate(patients, seed)
    for name, frame in frames.items():
        frame = frame[list(LANDING_REQUIRED[name])]
        if id_prefix:
            frame = frame.assign(
                **{c: id_prefix + frame[c].astype(str) for c in ID_COLUMNS if c in frame}
            )
        path = out_dir / f"{name}.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False, lineterminator="\n", float_format="%.1f")
        else:
            frame.to_parquet(path, index=False, engine="pyarrow")
    text = json.dumps(truth, sort_keys=True, indent=2) + "\n"
    (out_dir / "truth.json").write_text(text, encoding="utf-8")
    return out_dir
