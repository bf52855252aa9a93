"""Small-cell suppression: published counts below the threshold are shown as "<11".

The threshold (default 11) follows the CMS cell-size suppression policy for
data derived from patient records.
"""

from __future__ import annotations

import pandas as pd

COUNT_COLUMNS = (
    "n",
    "events",
    "at_risk",
    "censored",
    "episodes",
    "with_baseline",
    "responders",
    "remaining",
    "excluded",
    "administrations",
    "with_event",
)
RATE_COLUMNS = ("response_rate", "rate")


def suppress_counts(frame: pd.DataFrame, min_count: int = 11) -> pd.DataFrame:
    """Replace counts 1..min_count-1 by "<min_count" in every count column (zero stays 0).

    Rates computed from a suppressed numerator or denominator are blanked too, so a
    hidden count cannot be recovered from a rate and the other count.
    """
    out = frame.copy()
    small_any = pd.Series(False, index=out.index)
    for column in COUNT_COLUMNS:
        if column in out.columns:
            values = pd.to_numeric(out[column], errors="coerce")
            small = values.between(1, min_count - 1)
            small_any |= small
            out[column] = values.astype("Int64").astype(object).where(~small, f"<{min_count}")
    for column in RATE_COLUMNS:
        if column in out.columns:
            out[column] = out[column].astype(object).where(~small_any, "suppressed")
    return out
