"""The model stage: the run's episodes -> KM, log-rank, RMST and Cox results tables.

Estimators live in ``pipeline.models`` (one module each); this module only decides
which analyses the pipeline publishes and writes their tidy frames to ``results.*``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from pipeline.config import ModelSettings
from pipeline.derive_stage import read_episodes
from pipeline.descriptive import attrition, response_rates
from pipeline.episodes import analysis_frame, with_labels
from pipeline.models import fit_cox, fit_km, logrank, rmst
from pipeline.schema import PATIENT_KEY
from pipeline.warehouse import Warehouse

TIME, EVENT = "time_days", "event"
CATEGORICAL = ("route",)
REFERENCE = {"route": "IV"}


def fit_all(episodes: pd.DataFrame, settings: ModelSettings) -> dict[str, pd.DataFrame]:
    """Every published analysis as tidy frames keyed by results table name."""
    frame = analysis_frame(episodes)
    out: dict[str, list[pd.DataFrame]] = {
        k: [] for k in ("km_curves", "survival_summary", "landmarks", "rmst", "logrank")
    }
    if frame.empty:
        raise ValueError(
            "no responder episodes to analyse: check the delivery and the outcome definition"
        )
    for grouping in ("all", *settings.km_groups):
        group = None if grouping == "all" else grouping
        km = fit_km(frame, TIME, EVENT, group=group, landmarks=settings.landmarks_days)
        for name, table in (
            ("km_curves", km.curve),
            ("survival_summary", km.summary),
            ("landmarks", km.landmarks),
        ):
            out[name].append(_grouped(table, grouping))
        out["rmst"].append(
            _grouped(rmst(frame, TIME, EVENT, group=group, horizon=settings.horizon_days), grouping)
        )
        if group and frame[group].nunique() > 1:
            out["logrank"].append(logrank(frame, TIME, EVENT, group).assign(grouping=grouping))
    results = {k: pd.concat(v, ignore_index=True) for k, v in out.items() if v}
    results["cox"] = fit_main_cox(frame, settings)
    results["response_rates"] = response_rates(with_labels(episodes), settings.km_groups)
    results["attrition"] = attrition(episodes)
    return results


def fit_main_cox(frame: pd.DataFrame, settings: ModelSettings) -> pd.DataFrame:
    """The main Cox model; robust SEs clustered by patient when patients repeat."""
    repeated = frame[PATIENT_KEY].duplicated().any()
    categorical = [c for c in settings.covariates if c in CATEGORICAL]
    cox = fit_cox(
        frame,
        TIME,
        EVENT,
        covariates=list(settings.covariates),
        categorical=categorical,
        reference={k: v for k, v in REFERENCE.items() if k in categorical},
        cluster=PATIENT_KEY if repeated else None,
        ties=settings.ties,
    )
    return cox.table.assign(model="main", n=cox.n, events=cox.events)


def _grouped(table: pd.DataFrame, grouping: str) -> pd.DataFrame:
    return table.rename(columns={"group": "group_value"}).assign(grouping=grouping)


def fit_and_store(wh: Warehouse, run_id: str, settings: ModelSettings) -> dict[str, Any]:
    """Fit on this run's episodes and replace this run's rows in every results table."""
    results = fit_all(read_episodes(wh, run_id), settings)
    with wh.begin() as conn:
        counts = {
            name: wh.replace_run_rows(conn, "results", name, run_id, frame)
            for name, frame in results.items()
        }
    return counts
