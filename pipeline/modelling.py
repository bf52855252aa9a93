"""The model stage: the run's episodes -> every published analysis in ``results.*``.

Estimators live in ``pipeline.models`` (one module each) and secondary analyses in
``pipeline.sensitivity``; this module decides which analyses the pipeline publishes
and writes their tidy frames, all in one transaction per run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
from lifelines.exceptions import ConvergenceError

from pipeline import sensitivity
from pipeline.config import ModelSettings
from pipeline.derive_stage import read_episodes
from pipeline.descriptive import adverse_event_rates, attrition, response_rates
from pipeline.episodes import analysis_frame
from pipeline.errors import NoResultsError
from pipeline.models import fit_cox, fit_km, logrank, rmst, rmst_difference
from pipeline.models.cox import CoxResult
from pipeline.models.predict import baseline_hazard_table, design_means_table
from pipeline.schema import ANALYSIS_TABLES, PATIENT_KEY
from pipeline.strata import with_labels
from pipeline.warehouse import Warehouse

log = logging.getLogger(__name__)

TIME, EVENT = "time_days", "event"
CATEGORICAL = ("route",)
REFERENCE = {"route": "IV"}
CONTRASTS = ("route", "pattern")  # RMST differences and the stratified log-rank


def fit_all(episodes: pd.DataFrame, settings: ModelSettings) -> dict[str, pd.DataFrame]:
    """Every analysis in ``settings.analyses`` as tidy frames keyed by results table name
    (plus response rates and attrition, always published).

    A lifelines fit that does not converge (a tiny or degenerate cohort) is a data
    problem, raised as ``NoResultsError`` naming the analysis.
    """
    frame = analysis_frame(episodes)
    if frame.empty or frame[EVENT].sum() == 0:
        raise NoResultsError(
            "no responder episodes with events to analyse: check the delivery and the outcome definition"
        )
    chosen = set(settings.analyses)
    categorical = [c for c in settings.covariates if c in CATEGORICAL]
    results: dict[str, pd.DataFrame] = {}
    if chosen & {"km", "rmst"}:
        results.update(_timed("survival curves", lambda: survival_curves(frame, settings)))
    cox = None
    if chosen & {"cox", "ph_test"}:
        cox = _timed("main Cox", lambda: fit_main_cox(frame, settings))
    if "cox" in chosen:
        results.update(_timed("Cox tables", lambda: cox_tables(frame, settings, cox)))
    steps = {
        "ph_test": lambda: {"ph_test": sensitivity.ph_diagnostics(cox)},
        "dose_response": lambda: {
            "dose_response": sensitivity.dose_responses(frame, settings, categorical)
        },
        "competing_risks": lambda: {
            "competing_risks": sensitivity.competing_risks(frame, settings)
        },
        "interval_censored": lambda: sensitivity.interval_censored(frame, settings, categorical),
    }
    for name, step in steps.items():
        if name in chosen:
            results.update(_timed(name, step, events=int(frame[EVENT].sum())))
    published = {t for a in chosen for t in ANALYSIS_TABLES[a]}
    results = {k: v for k, v in results.items() if k in published}
    results["response_rates"] = response_rates(with_labels(episodes), settings.km_groups)
    results["attrition"] = attrition(episodes)
    return results


def _timed(name: str, step: Callable[[], Any], events: int | None = None) -> Any:
    """Run one analysis, log its time; lifelines' ConvergenceError becomes NoResultsError."""
    started = time.perf_counter()
    try:
        out = step()
    except ConvergenceError as exc:
        raise NoResultsError(
            f"{name}: the model did not converge on this cohort ({events} events); it is too "
            f"small or degenerate for it. Widen the cohort or leave {name!r} out of the "
            f"analyses. ({str(exc).splitlines()[0]})"
        ) from exc
    log.info("model: %s in %.1f s", name, time.perf_counter() - started)
    return out


def cox_tables(
    frame: pd.DataFrame, settings: ModelSettings, cox: CoxResult
) -> dict[str, pd.DataFrame]:
    """Main Cox coefficients, baseline hazard and design means; the site-stratified Cox
    (when there are several sites) is appended to ``cox`` as ``stratified_by_site``."""
    table = cox.table.assign(model="main", n=cox.n, events=cox.events)
    if "site_id" in frame and frame["site_id"].nunique() > 1:
        by_site = fit_main_cox(frame, settings, strata="site_id")
        stratified = by_site.table.assign(
            model="stratified_by_site", n=by_site.n, events=by_site.events
        )
        table = pd.concat([table, stratified], ignore_index=True)
    return {
        "cox": table,
        "cox_baseline": baseline_hazard_table(cox).assign(model="main"),
        "cox_means": design_means_table(cox).assign(model="main"),
    }


def survival_curves(frame: pd.DataFrame, settings: ModelSettings) -> dict[str, pd.DataFrame]:
    """KM curves, medians, landmarks and RMST per stratum; log-rank tests; RMST contrasts."""
    out: dict[str, list[pd.DataFrame]] = {
        k: []
        for k in (
            "km_curves",
            "survival_summary",
            "landmarks",
            "rmst",
            "logrank",
            "rmst_difference",
        )
    }
    km_chosen, rmst_chosen = "km" in settings.analyses, "rmst" in settings.analyses
    for grouping in ("all", *settings.km_groups):
        group = None if grouping == "all" else grouping
        if group and frame[group].nunique() < 2:
            continue
        if km_chosen:
            km = fit_km(frame, TIME, EVENT, group=group, landmarks=settings.landmarks_days)
            for name, table in (
                ("km_curves", km.curve),
                ("survival_summary", km.summary),
                ("landmarks", km.landmarks),
            ):
                out[name].append(_grouped(table, grouping))
            if group:
                out["logrank"].append(logrank(frame, TIME, EVENT, group).assign(grouping=grouping))
        if rmst_chosen:
            rmst_table = rmst(frame, TIME, EVENT, group=group, horizon=settings.horizon_days)
            out["rmst"].append(_grouped(rmst_table, grouping))
    for grouping in CONTRASTS if rmst_chosen else ():
        if frame[grouping].nunique() < 2:
            continue
        reference = REFERENCE.get(grouping)
        diff = rmst_difference(
            frame, TIME, EVENT, grouping, settings.horizon_days, reference=reference
        )
        out["rmst_difference"].append(_grouped(diff, grouping))
    # Stratified log-rank: route compared within single infusions and within series.
    if km_chosen and frame["route"].nunique() > 1 and frame["pattern"].nunique() > 1:
        out["logrank"].append(
            logrank(frame, TIME, EVENT, "route", strata="pattern").assign(grouping="route|pattern")
        )
    return {k: pd.concat(v, ignore_index=True) for k, v in out.items() if v}


def fit_main_cox(
    frame: pd.DataFrame, settings: ModelSettings, strata: str | None = None
) -> CoxResult:
    """The main Cox model; robust SEs clustered by patient when patients repeat."""
    repeated = frame[PATIENT_KEY].duplicated().any()
    categorical = [c for c in settings.covariates if c in CATEGORICAL]
    return fit_cox(
        frame,
        TIME,
        EVENT,
        covariates=list(settings.covariates),
        categorical=categorical,
        reference={k: v for k, v in REFERENCE.items() if k in categorical},
        strata=strata,
        cluster=PATIENT_KEY if repeated else None,
        ties=settings.ties,
    )


def _grouped(table: pd.DataFrame, grouping: str) -> pd.DataFrame:
    return table.rename(columns={"group": "group_value"}).assign(grouping=grouping)


def fit_and_store(wh: Warehouse, run_id: str, settings: ModelSettings) -> dict[str, Any]:
    """Fit on this run's episodes and replace this run's rows in every results table.

    Tables of analyses not chosen get no rows for this run (any left by an earlier
    attempt are removed) and are not in the returned counts.
    """
    results = fit_all(read_episodes(wh, run_id), settings)
    results["adverse_event_rates"] = adverse_event_rates(
        wh.read("core", "treatments"), wh.read("core", "adverse_events")
    )
    unchosen = [
        t for a, tables in ANALYSIS_TABLES.items() if a not in settings.analyses for t in tables
    ]
    with wh.begin() as conn:
        for name in unchosen:
            wh.replace_run_rows(conn, "results", name, run_id, pd.DataFrame())
        return {
            name: wh.replace_run_rows(conn, "results", name, run_id, frame)
            for name, frame in results.items()
        }
