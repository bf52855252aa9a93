"""Log-rank test for equality of survival curves across groups.

References
----------
Mantel N. Evaluation of survival data and two new rank order statistics arising
in its consideration. Cancer Chemother Rep 1966;50:163-170.
Peto R, Peto J. Asymptotically efficient rank invariant test procedures.
JRSS A 1972;135:185-207.
Therneau TM. survival: R package, ``survdiff`` (rho = 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.duration.survfunc import survdiff

from pipeline.models.km import group_labels, prepare_survival_frame

LOGRANK_COLUMNS = ("statistic", "df", "p")


def logrank(
    df: pd.DataFrame,
    time: str,
    event: str,
    group: str,
    strata: str | None = None,
) -> pd.DataFrame:
    """Log-rank chi-square test across the levels of ``group``, as R
    ``survdiff(Surv(time, event) ~ group + strata(strata))``.

    Computed by statsmodels' ``survdiff`` (O - E and its hypergeometric variance,
    summed over strata for a stratified test); df = number of groups - 1.
    Rows with a missing time, event, group or stratum are dropped.
    Returns one row: statistic, df, p.
    """
    data = prepare_survival_frame(df, time, event, [group, strata] if strata else [group])
    labels = group_labels(data, group).to_numpy()
    n_groups = len(np.unique(labels))
    if n_groups < 2:
        raise ValueError(f"column {group!r} has fewer than two groups; nothing to compare")
    strata_values = None if strata is None else data[strata].astype(str).to_numpy()
    statistic, p = survdiff(
        data[time].to_numpy(dtype=float),
        data[event].to_numpy(dtype=float),
        labels,
        strata=strata_values,
    )
    return pd.DataFrame([{"statistic": float(statistic), "df": n_groups - 1, "p": float(p)}])
