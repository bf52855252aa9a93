"""Render a run's report from what the warehouse holds for it (never from memory).

Reading back from the warehouse means the report shows exactly what researchers
can query, with the same small-cell suppression.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from pipeline import runs
from pipeline.config import Settings
from pipeline.report.plots import forest_plot, km_plot
from pipeline.report.suppress import suppress_counts
from pipeline.warehouse import Warehouse

RESULT_TABLES = (
    "attrition",
    "response_rates",
    "survival_summary",
    "landmarks",
    "rmst",
    "logrank",
    "cox",
    "km_curves",
)
GROUP_TITLES = {
    "all": "All responders",
    "route": "By route",
    "pattern": "Single infusion vs series",
}


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


def _table(frame: pd.DataFrame, columns: list[str] | None = None, digits: int = 3) -> str:
    if frame.empty:
        return "<p class='muted'>none</p>"
    shown = frame[columns] if columns else frame
    return shown.to_html(
        index=False, float_format=lambda v: f"{v:.{digits}g}", na_rep="–", classes="tbl", border=0
    )


def write_report(wh: Warehouse, run_id: str, settings: Settings) -> Path:
    """Write ``<report_dir>/<run_id>/report.html`` and return its path."""
    results = load_results(wh, run_id)
    run = runs.get_run(wh, run_id) or {}
    k = settings.min_cell_count
    sections: dict[str, Any] = {
        "attrition": _table(
            suppress_counts(results["attrition"], k),
            ["step", "description", "remaining", "excluded"],
        ),
        "response": _table(
            suppress_counts(results["response_rates"], k),
            ["grouping", "group_value", "episodes", "with_baseline", "responders", "response_rate"],
        ),
        "summary": _table(
            suppress_counts(results["survival_summary"], k),
            ["grouping", "group_value", "n", "events", "median", "median_lower", "median_upper"],
        ),
        "landmarks": _table(
            results["landmarks"], ["grouping", "group_value", "day", "survival", "lower", "upper"]
        ),
        "rmst": _table(
            results["rmst"], ["grouping", "group_value", "horizon", "rmst", "lower", "upper"]
        ),
        "logrank": _table(results["logrank"], ["grouping", "statistic", "df", "p"]),
        "cox": _table(results["cox"], ["term", "hr", "hr_lower", "hr_upper", "p"]),
        "dq": _table(
            suppress_counts(quarantine_summary(wh, run_id).rename(columns={"rows_failed": "n"}), k)
        ),
    }
    plots = {
        grouping: km_plot(results["km_curves"], grouping, GROUP_TITLES.get(grouping, grouping))
        for grouping in results["km_curves"]["grouping"].unique()
    }
    forest = forest_plot(results["cox"]) if not results["cox"].empty else None
    env = Environment(
        loader=PackageLoader("pipeline.report", "templates"), autoescape=select_autoescape()
    )
    page = env.get_template("report.html.j2").render(
        run_id=run_id,
        run=run,
        lineage=html.escape(
            json.dumps(
                {
                    k: run.get(k)
                    for k in ("trigger", "code_version", "input_fingerprint", "started_at")
                },
                default=str,
                indent=1,
            )
        ),
        sections=sections,
        plots=plots,
        titles=GROUP_TITLES,
        forest=forest,
        min_cell=k,
    )
    out_dir = Path(settings.report_dir) / run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path.resolve()
