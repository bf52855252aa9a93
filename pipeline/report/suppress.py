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
# (total, part) pairs shown side by side: total - part is a hidden count in its own right.
COMPLEMENTS = (
    ("episodes", "with_baseline"),
    ("with_baseline", "responders"),
    ("n", "events"),
    ("administrations", "with_event"),
)


def suppress_counts(frame: pd.DataFrame, min_count: int = 11) -> pd.DataFrame:
    """Replace counts 1..min_count-1 by "<min_count" in every count column (zero stays 0).

    Rates computed from a suppressed numerator or denominator are blanked too, so a
    hidden count cannot be recovered from a rate and the other count.
    """
    out = frame.copy()
    small_any = pd.Series(False, index=out.index)
    hide = {
        c: pd.to_numeric(out[c], errors="coerce").between(1, min_count - 1)
        for c in COUNT_COLUMNS
        if c in out
    }
    # Complementary suppression: when total - part is a small count, hide the part as well.
    for total, part in COMPLEMENTS:
        if total in out and part in out:
            gap = pd.to_numeric(out[total], errors="coerce") - pd.to_numeric(
                out[part], errors="coerce"
            )
            hide[part] = hide[part] | gap.between(1, min_count - 1)
    for column, small in hide.items():
        values = pd.to_numeric(out[column], errors="coerce")
        small_any |= small
        out[column] = values.astype("Int64").astype(object).where(~small, f"<{min_count}")
    for column in RATE_COLUMNS:
        if column in out.columns:
            out[column] = out[column].astype(object).where(~small_any, "suppressed")
    return out


def round_after_small_step(
    attrition: pd.DataFrame, min_count: int = 11, base: int = 10
) -> pd.DataFrame:
    """Attrition: once a step excludes a small count, show later ``remaining`` values rounded.

    remaining(k) = remaining(k-1) - excluded(k), so an exact ``remaining`` on both sides of
    a hidden exclusion would give it away; rounding to ``base`` leaves it uncertain.
    """
    after = pd.to_numeric(attrition["excluded"], errors="coerce").between(1, min_count - 1).cummax()
    rounded = (pd.to_numeric(attrition["remaining"]) / base).round().astype(int) * base
    out = suppress_counts(attrition, min_count)
    out["remaining"] = out["remaining"].where(~after, [f"~{v}" for v in rounded])
    return out
