"""Render a run's report from what the warehouse holds for it (never from memory).

Reading back from the warehouse means the report shows exactly what researchers
can query, with the same small-cell suppression.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from pipeline import runs
from pipeline.config import Settings
from pipeline.data_docs import build_data_docs, run_results
from pipeline.report.plots import dose_response_plot, forest_plot, interval_plot, km_plot
from pipeline.report.suppress import round_after_small_step, suppress_counts
from pipeline.warehouse import Warehouse

RESULT_TABLES = (
    "attrition",
    "response_rates",
    "survival_summary",
    "landmarks",
    "rmst",
    "rmst_difference",
    "logrank",
    "cox",
    "ph_test",
    "km_curves",
    "dose_response",
    "turnbull",
    "interval_weibull",
    "interval_cox",
    "competing_risks",
    "adverse_event_rates",
)
GROUP_TITLES = {
    "all": "All responders",
    "route": "By route",
    "pattern": "Single infusion vs series",
    "dose_band": "By dose (mg/kg)",
    "infusion_band": "By infusion length",
    "primary_condition": "By condition",
    "comorbidity_band": "By number of comorbidities",
    "severity_band": "By baseline pain severity",
}
AT_RISK_DAYS = (0, 7, 14, 30, 60, 90)


def load_results(wh: Warehouse, run_id: str) -> dict[str, pd.DataFrame]:
    out = {}
    for name in RESULT_TABLES:
        table = wh.table("results", name)
        out[name] = wh.read("results", name, table.c.run_id == run_id).drop(columns="run_id")
    return out


def quarantine_summary(wh: Warehouse, run_id: str) -> pd.DataFrame:
    dq = wh.table("dq", "validation_results")
    frame = wh.read("dq", "validation_results", dq.c.run_id == run_id)
    failed = frame.loc[(frame.rows_failed > 0) & ~frame.rule_id.str.endswith(".all_rules")]
    return failed.groupby(["source_table", "rule_id"], as_index=False)["rows_failed"].sum()


def at_risk_table(curves: pd.DataFrame, grouping: str) -> pd.DataFrame:
    """Numbers at risk at fixed days under a KM plot (R's ``summary(fit, times=)``)."""
    rows = {}
    for value, curve in curves.loc[curves.grouping == grouping].groupby("group_value"):
        curve = curve.sort_values("time")
        counts = []
        for day in AT_RISK_DAYS:
            later = curve.loc[curve.time >= day, "at_risk"]
            counts.append(int(later.iloc[0]) if len(later) else 0)
        rows[value] = counts
    return pd.DataFrame.from_dict(rows, orient="index", columns=[f"day {d}" for d in AT_RISK_DAYS])


def _table(frame: pd.DataFrame, columns: list[str] | None = None, digits: int = 3) -> str:
    if frame.empty:
        return "<p class='muted'>none</p>"
    shown = frame[[c for c in columns if c in frame.columns]] if columns else frame
    if "p" in shown.columns:  # a p-value below double precision is not "0"
        shown = shown.assign(p=shown["p"].astype(object).where(shown["p"] != 0, "<1e-16"))
    return shown.to_html(
        index=False, float_format=lambda v: f"{v:.{digits}g}", na_rep="–", classes="tbl", border=0
    )


def _suppressed_at_risk(curves: pd.DataFrame, grouping: str, k: int) -> str:
    table = at_risk_table(curves, grouping)
    masked = table.astype(object).where(~table.apply(lambda c: c.between(1, k - 1)), f"<{k}")
    return masked.to_html(classes="tbl", border=0)


def write_report(wh: Warehouse, run_id: str, settings: Settings) -> Path:
    """Write ``<report_dir>/<run_id>/report.html`` and return its path."""
    r = load_results(wh, run_id)
    run = runs.get_run(wh, run_id) or {}
    k = settings.min_cell_count
    ph = r["ph_test"]
    sections: dict[str, Any] = {
        "attrition": _table(
            round_after_small_step(r["attrition"], k),
            ["step", "description", "remaining", "excluded"],
        ),
        "response": _table(
            suppress_counts(r["response_rates"], k),
            ["grouping", "group_value", "episodes", "with_baseline", "responders", "response_rate"],
        ),
        "summary": _table(
            suppress_counts(r["survival_summary"], k),
            ["grouping", "group_value", "n", "events", "median", "median_lower", "median_upper"],
        ),
        "landmarks": _table(
            r["landmarks"], ["grouping", "group_value", "day", "survival", "lower", "upper"]
        ),
        "rmst": _table(r["rmst"], ["grouping", "group_value", "horizon", "rmst", "lower", "upper"]),
        "rmst_difference": _table(
            r["rmst_difference"],
            ["grouping", "group_value", "reference", "difference", "lower", "upper", "p"],
        ),
        "logrank": _table(r["logrank"], ["grouping", "statistic", "df", "p"]),
        "cox": _table(
            r["cox"].loc[r["cox"].model == "main"], ["term", "hr", "hr_lower", "hr_upper", "p"]
        ),
        "cox_site": _table(
            r["cox"].loc[r["cox"].model == "stratified_by_site"],
            ["term", "hr", "hr_lower", "hr_upper", "p"],
        ),
        "ph": _table(ph, ["term", "statistic", "df", "p", "violated"]),
        "ph_violated": list(ph.loc[ph.violated.astype(bool), "term"]),
        "weibull": _table(
            suppress_counts(r["interval_weibull"], k),
            [
                "grouping",
                "group_value",
                "n",
                "shape",
                "shape_lower",
                "shape_upper",
                "scale",
                "median",
            ],
        ),
        "interval_cox": _table(r["interval_cox"], ["term", "ph_coef", "ph_lower", "ph_upper", "p"]),
        "competing": _table(r["competing_risks"], ["cause", "day", "cif", "lower", "upper"]),
        "adverse": _table(
            suppress_counts(r["adverse_event_rates"], k),
            ["event", "route", "dose_band", "administrations", "with_event", "rate"],
        ),
        "dq": _table(
            suppress_counts(quarantine_summary(wh, run_id).rename(columns={"rows_failed": "n"}), k)
        ),
    }
    curves = r["km_curves"]
    groupings = [g for g in GROUP_TITLES if g in set(curves["grouping"])]
    km = [
        {
            "title": GROUP_TITLES[g],
            "png": km_plot(curves, g, GROUP_TITLES[g]),
            "at_risk": _suppressed_at_risk(curves, g, k),
        }
        for g in groupings
    ]
    figures = {
        "forest": forest_plot(r["cox"].loc[r["cox"].model == "main"])
        if not r["cox"].empty
        else None,
        "dose": dose_response_plot(
            r["dose_response"], "dose_mg_per_kg", "dose (mg/kg per administration)"
        )
        if not r["dose_response"].empty
        else None,
        "infusion": dose_response_plot(
            r["dose_response"], "infusion_hours", "infusion length (hours)"
        )
        if not r["dose_response"].empty
        else None,
        "interval": interval_plot(curves, r["turnbull"]) if not r["turnbull"].empty else None,
    }
    lineage = {
        key: run.get(key)
        for key in (
            "run_id",
            "dag_run_id",
            "trigger",
            "code_version",
            "input_fingerprint",
            "started_at",
            "timings",
        )
    }
    data_docs = build_data_docs(run_id, settings.report_dir, run_results(wh, run_id))
    env = Environment(
        loader=PackageLoader("pipeline.report", "templates"), autoescape=select_autoescape()
    )
    page = env.get_template("report.html.j2").render(
        run_id=run_id,
        sections=sections,
        km=km,
        figures=figures,
        lineage=json.dumps(lineage, default=str, indent=1),
        parameters=run.get("parameters") or "{}",
        min_cell=k,
        data_docs=data_docs is not None,
        horizon=settings.models.horizon_days,
    )
    out_dir = Path(settings.report_dir) / run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path.resolve()
