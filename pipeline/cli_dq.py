"""``relief dq``: a run's validation failures, grouped by rule, from quarantine and dq.

``add_commands(sub)`` registers the verb on the ``relief`` parser and returns its
handler; the reading functions are plain and tested on both engines.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pandas as pd
from sqlalchemy import func, select

from pipeline.config import ConfigError, from_env
from pipeline.warehouse import Warehouse

EXAMPLE = """example:
  $ relief dq --warehouse sqlite:///demo/warehouse.db
  run r20250601T120000-1a2b3c (started 2025-06-01 12:00:00, status success)
  delivery d3f0c2a1b4e5d6c7: promoted; 12783 rows in, 19 quarantined (0.1%)

  rule                                         table             rows  example source rows                  message
  pain_assessments.pain_score.between_0_10     pain_assessments     3  pain_assessments.csv:40, 41, 42      pain_score '11' is outside 0–10
  treatments.patient_id.known_patient          treatments           1  treatments.csv:20                    patient_id is in neither ...

Every quarantined row, with its value and full message, is in quarantine.rows
(delivery_id, source_file, source_row, rule_id). docs/validation.md explains each rule.
"""

FAILURE_COLUMNS = ("rule_id", "source_table", "rows_failed", "examples", "message")


def add_commands(sub: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add ``relief dq`` to the ``relief`` sub-commands; returns {name: handler}."""
    dq = sub.add_parser(
        "dq",
        help="show a run's validation failures grouped by rule (default: the last run)",
        description="Print the validation failures of the last run that validated a delivery "
        "(or of --run RUN_ID): per delivery its rows in and quarantined, then one line per "
        "rule with the table, the rows it quarantined, example source rows (file:row) and a "
        "message saying what to fix.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dq.add_argument("--run", dest="run_id", metavar="RUN_ID", help="a run id (see `relief status`)")
    dq.add_argument(
        "--warehouse",
        help="SQLAlchemy URL (default $RELIEF_WAREHOUSE_URL or sqlite:///relief_warehouse.db)",
    )
    dq.add_argument(
        "--examples",
        type=int,
        default=5,
        metavar="N",
        help="example source rows shown per rule (default 5)",
    )
    return {"dq": cmd_dq}


def cmd_dq(args: argparse.Namespace) -> int:
    if args.examples < 1:
        raise ConfigError("--examples must be at least 1")
    settings = from_env(warehouse_url=args.warehouse, demo=True)
    wh = Warehouse(settings.warehouse_url)
    run_id = args.run_id or last_validated_run(wh)
    if run_id is None:
        print("no validation results recorded yet; run `relief run --landing ...` first")
        return 0
    deliveries = delivery_summary(wh, run_id)
    if deliveries.empty:
        raise ConfigError(
            f"run {run_id} has no validation results; `relief status` lists runs, and a run "
            "that found no new delivery validates nothing"
        )
    print(_run_header(wh, run_id))
    for row in deliveries.itertuples():
        share = row.quarantined / row.rows_in if row.rows_in else 0.0
        print(
            f"delivery {row.delivery_id}: {row.status}; {row.rows_in} rows in, "
            f"{row.quarantined} quarantined ({share:.1%})"
        )
        if row.error:
            print(f"  {row.error}")
    failures = failures_by_rule(wh, run_id, args.examples)
    print()
    if failures.empty:
        print("no rule failed: every row was promoted")
        return 0
    print(_format(failures))
    return 0


def last_validated_run(wh: Warehouse) -> str | None:
    """The most recently started run that wrote validation results."""
    runs = wh.table("results", "model_runs")
    dq = wh.table("dq", "validation_results")
    with wh.engine.connect() as conn:
        found = conn.execute(
            select(runs.c.run_id)
            .where(runs.c.run_id.in_(select(dq.c.run_id)))
            .order_by(runs.c.started_at.desc())
            .limit(1)
        ).scalar_one_or_none()
        if found is None:  # validated outside a recorded run (tests, notebooks)
            found = conn.execute(select(func.max(dq.c.run_id))).scalar_one_or_none()
    return found


def delivery_summary(wh: Warehouse, run_id: str) -> pd.DataFrame:
    """Per delivery validated in the run: rows in, rows quarantined, manifest status."""
    dq = wh.table("dq", "validation_results")
    manifest = wh.table("staging", "deliveries")
    query = (
        select(
            dq.c.delivery_id,
            func.sum(dq.c.rows_checked).label("rows_in"),
            func.sum(dq.c.rows_failed).label("quarantined"),
            func.max(manifest.c.status).label("status"),
            func.max(manifest.c.error).label("error"),
        )
        .join_from(dq, manifest, manifest.c.delivery_id == dq.c.delivery_id, isouter=True)
        .where(dq.c.run_id == run_id, dq.c.rule_id.like("%.all_rules"))
        .group_by(dq.c.delivery_id)
        .order_by(dq.c.delivery_id)
    )
    with wh.engine.connect() as conn:
        frame = pd.read_sql(query, conn)
    frame[["rows_in", "quarantined"]] = frame[["rows_in", "quarantined"]].astype("int64")
    return frame


def failures_by_rule(wh: Warehouse, run_id: str, examples: int = 5) -> pd.DataFrame:
    """One row per failed rule: rule_id, source_table, rows_failed, examples, message.

    ``examples`` lists the first source rows as ``file:row``; ``message`` is the one of
    the first failing row (messages name the offending value, so they differ by row).
    """
    q = wh.table("quarantine", "rows")
    ranked = select(
        q.c.rule_id,
        q.c.source_table,
        q.c.source_file,
        q.c.source_row,
        q.c.message,
        func.count().over(partition_by=q.c.rule_id).label("rows_failed"),
        func.row_number()
        .over(partition_by=q.c.rule_id, order_by=(q.c.source_file, q.c.source_row))
        .label("n"),
    ).where(q.c.run_id == run_id)
    ranked = ranked.subquery()
    with wh.engine.connect() as conn:
        rows = pd.read_sql(select(ranked).where(ranked.c.n <= examples), conn)
    if rows.empty:
        return pd.DataFrame(columns=list(FAILURE_COLUMNS))
    rows = rows.sort_values(["rule_id", "n"])
    grouped = rows.groupby("rule_id", sort=False).agg(
        source_table=("source_table", "first"),
        rows_failed=("rows_failed", "first"),
        examples=("source_row", lambda r: ", ".join(str(int(v)) for v in r)),
        source_file=("source_file", "first"),
        message=("message", "first"),
    )
    grouped["examples"] = grouped["source_file"].fillna("?") + ":" + grouped["examples"]
    grouped = grouped.reset_index().sort_values(["rows_failed", "rule_id"], ascending=[False, True])
    grouped["rows_failed"] = grouped["rows_failed"].astype("int64")
    return grouped.loc[:, list(FAILURE_COLUMNS)].reset_index(drop=True)


def _run_header(wh: Warehouse, run_id: str) -> str:
    runs = wh.table("results", "model_runs")
    with wh.engine.connect() as conn:
        run = conn.execute(
            select(runs.c.started_at, runs.c.status).where(runs.c.run_id == run_id)
        ).first()
    if run is None:
        return f"run {run_id}"
    return f"run {run_id} (started {run.started_at:%Y-%m-%d %H:%M:%S}, status {run.status})"


def _format(failures: pd.DataFrame) -> str:
    header = ("rule", "table", "rows", "example source rows", "message")
    cells = [header] + [
        (r.rule_id, r.source_table, str(r.rows_failed), r.examples, r.message)
        for r in failures.itertuples()
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    lines = []
    for row in cells:
        left = [row[i].rjust(widths[i]) if i == 2 else row[i].ljust(widths[i]) for i in range(4)]
        lines.append("  ".join([*left, row[4]]).rstrip())
    return "\n".join(lines)
