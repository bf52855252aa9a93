"""``relief status``: the last runs with their state, row counts and stage timings.

Wired into ``pipeline.cli`` through ``add_commands``; reads only ``results.model_runs``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import pandas as pd
from sqlalchemy import select

from pipeline.config import from_env
from pipeline.warehouse import Warehouse

EXAMPLE = """example:
  $ relief status --limit 2
  run_id                       trigger   status   started              seconds  counts                                   timings
  a-manual__2026-03-01T09-...  analyst   success  2026-03-01 09:12:03     7.9  derive: 512 episodes, 388 events         derive 0.6s, model 7.3s
  n-scheduled__2026-03-01T...  schedule  success  2026-03-01 02:00:04    21.4  ingest: 48211 rows; derive: 2011 ...     ingest 3.1s, validate 8.0s, ...
"""


def add_commands(
    sub: argparse._SubParsersAction,
) -> dict[str, Callable[[argparse.Namespace], int]]:
    status = sub.add_parser(
        "status",
        help="the last runs with their state, row counts and timings",
        description="The most recent runs (nightly and analyst) from results.model_runs, "
        "newest first: state, trigger, duration, key row counts and seconds per stage. "
        "A failed run shows its error.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument(
        "--warehouse",
        help="SQLAlchemy URL (default $RELIEF_WAREHOUSE_URL or sqlite:///relief_warehouse.db)",
    )
    status.add_argument("--limit", type=int, default=10, help="how many runs (default 10)")
    status.add_argument("--json", action="store_true", help="one JSON object per line")
    return {"status": cmd_status}


def cmd_status(args: argparse.Namespace) -> int:
    settings = from_env(warehouse_url=args.warehouse, demo=True)
    table = run_status(Warehouse(settings.warehouse_url), args.limit)
    if table.empty:
        print("no runs recorded yet")
        return 0
    if args.json:
        for record in table.to_dict(orient="records"):
            print(json.dumps(record, default=str))
        return 0
    shown = table.assign(
        counts=table["counts"].map(summarise_counts),
        timings=table["timings"].map(
            lambda t: ", ".join(f"{stage} {secs:.1f}s" for stage, secs in t.items())
        ),
    )
    print(shown.drop(columns=["error", "report"]).to_string(index=False))
    for row in table.itertuples():
        if row.error:
            print(f"{row.run_id} failed: {row.error}")
        if row.report:
            print(f"{row.run_id} report: {row.report}")
    return 0


def run_status(wh: Warehouse, limit: int = 10) -> pd.DataFrame:
    """The newest runs with parsed counts and timings (empty frame when there are none)."""
    if not wh.has_table("results", "model_runs"):
        return pd.DataFrame()
    runs = wh.table("results", "model_runs")
    query = (
        select(
            runs.c.run_id,
            runs.c.trigger,
            runs.c.status,
            runs.c.started_at,
            runs.c.finished_at,
            runs.c.row_counts,
            runs.c.timings,
            runs.c.error,
            runs.c.report_path,
        )
        .order_by(runs.c.started_at.desc())
        .limit(limit)
    )
    with wh.engine.connect() as conn:
        frame = pd.read_sql(query, conn)
    if frame.empty:
        return frame
    seconds = (frame["finished_at"] - frame["started_at"]).dt.total_seconds().round(1)
    return pd.DataFrame(
        {
            "run_id": frame["run_id"],
            "trigger": frame["trigger"],
            "status": frame["status"],
            "started": frame["started_at"].dt.strftime("%Y-%m-%d %H:%M:%S"),
            "seconds": seconds,
            "counts": frame["row_counts"].map(_json),
            "timings": frame["timings"].map(_json),
            "error": frame["error"].where(frame["error"].notna(), None),
            "report": frame["report_path"].where(frame["report_path"].notna(), None),
        }
    )


def summarise_counts(counts: dict[str, Any]) -> str:
    """The few numbers worth a glance: rows loaded, episodes, events, result rows."""
    parts = []
    if "ingest" in counts:
        parts.append(f"ingest: {counts['ingest'].get('rows', 0)} rows")
    if "validate" in counts and counts["validate"]:
        promoted = sum(
            sum(d.get("promoted", {}).values()) if isinstance(d.get("promoted"), dict) else 0
            for d in counts["validate"].values()
            if isinstance(d, dict)
        )
        parts.append(f"validate: {promoted} promoted")
    if "derive" in counts:
        derive = counts["derive"]
        parts.append(
            f"derive: {derive.get('episodes', 0)} episodes, {derive.get('events', 0)} events"
        )
    if "model" in counts:
        model = counts["model"]
        if model.get("skipped"):  # the refit policy kept the last fit (runs.decide_refit)
            parts.append(f"model: not refitted, kept {model.get('last_fit')} ({model['skipped']})")
        else:
            parts.append(f"model: {sum(v for v in model.values() if isinstance(v, int))} rows")
    return "; ".join(parts)


def _json(text: str | None) -> dict[str, Any]:
    try:
        return json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
