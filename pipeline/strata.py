"""Analysis labels and bands for stratified Kaplan–Meier curves and tables.

Band edges are chosen to separate clinically distinct practice, not to balance counts:
dose bands around the 0.5 mg/kg of common sub-anaesthetic protocols; infusion bands
separate boluses (IM/IN, ≤ 10 min), short 40-60 min infusions, and the multi-hour
infusions of CRPS protocols; baseline severity follows the usual NRS cut-points
(mild 1-3, moderate 4-6, severe 7-10; Boonstra et al., Pain 2014;155:2545).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DOSE_BANDS = ([0, 0.25, 0.5, 0.75, np.inf], ["<0.25", "0.25-0.5", "0.5-0.75", ">=0.75"])
INFUSION_BANDS = (
    [-np.inf, 10, 60, 180, np.inf],
    ["<=10 min", "10-60 min", "60-180 min", ">180 min"],
)
SEVERITY_BANDS = ([-np.inf, 3, 6, np.inf], ["mild (<=3)", "moderate (4-6)", "severe (7-10)"])
COMORBIDITY_BANDS = ([-np.inf, 0, 1, np.inf], ["0", "1", "2+"])

KM_STRATA = (
    "route",
    "pattern",
    "dose_band",
    "infusion_band",
    "primary_condition",
    "comorbidity_band",
    "severity_band",
)


def band(values: pd.Series, bands: tuple[list[float], list[str]], right: bool = True) -> pd.Series:
    edges, labels = bands
    return pd.cut(values, bins=edges, labels=labels, right=right).astype(str)


def with_labels(episodes: pd.DataFrame) -> pd.DataFrame:
    """Model-ready columns: boolean ``is_series``, ``pattern``, ``infusion_hours`` and bands."""
    out = episodes.copy()
    out["is_series"] = out["is_series"].astype(bool)
    out["pattern"] = np.where(out["is_series"], "series", "single")
    out["infusion_hours"] = out["infusion_min"] / 60.0
    out["dose_band"] = band(out["dose_mg_per_kg"], DOSE_BANDS, right=False)
    out["infusion_band"] = band(out["infusion_min"], INFUSION_BANDS)
    out["severity_band"] = band(out["baseline_score"], SEVERITY_BANDS)
    out["comorbidity_band"] = band(out["n_comorbidities"], COMORBIDITY_BANDS)
    return out
