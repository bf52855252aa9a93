"""Run lineage: one ``results.model_runs`` row per run, updated as stages finish.

A run's results are trustworthy only when its status is ``success``; researcher
views filter on that, so a failed or half-finished run never shows.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update

from pipeline.warehouse import Warehouse


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_run_id() -> str:
    """Sortable and unique: UTC timestamp plus a random suffix."""
    return f"r{now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def code_version() -> str:
    """Package version and, when run from a git checkout, the commit."""
    try:
        version = metadata.version("relief")
    except metadata.PackageNotFoundError:
        version = "unknown"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+{commit}" if commit else version


def start_run(
    wh: Warehouse,
    run_id: str,
    *,
    parameters: dict[str, Any],
    trigger: str,
    dag_run_id: str | None = None,
) -> None:
    """Record a run as ``running``; re-starting a run id resets its lineage row."""
    runs = wh.table("results", "model_runs")
    with wh.begin() as conn:
        conn.execute(delete(runs).where(runs.c.run_id == run_id))
        conn.execute(
            runs.insert().values(
                run_id=run_id,
                dag_run_id=dag_run_id,
                trigger=trigger,
                status="running",
                parameters=json.dumps(parameters, sort_keys=True, default=str),
                row_counts="{}",
                timings="{}",
                code_version=code_version(),
                started_at=now(),
            )
        )


def record_stage(
    wh: Warehouse, run_id: str, stage: str, counts: dict[str, Any], seconds: float
) -> None:
    """Add one stage's row counts and duration to the run's lineage."""
    runs = wh.table("results", "model_runs")
    with wh.begin() as conn:
        row = conn.execute(
            select(runs.c.row_counts, runs.c.timings).where(runs.c.run_id == run_id)
        ).one()
        row_counts = json.loads(row.row_counts or "{}")
        timings = json.loads(row.timings or "{}")
        row_counts[stage] = counts
        timings[stage] = round(seconds, 3)
        conn.execute(
            update(runs)
            .where(runs.c.run_id == run_id)
            .values(row_counts=json.dumps(row_counts, default=str), timings=json.dumps(timings))
        )


def set_fields(wh: Warehouse, run_id: str, **values: Any) -> None:
    runs = wh.table("results", "model_runs")
    with wh.begin() as conn:
        conn.execute(update(runs).where(runs.c.run_id == run_id).values(**values))


def finish_run(wh: Warehouse, run_id: str, status: str, error: str | None = None) -> None:
    set_fields(wh, run_id, status=status, error=error, finished_at=now())


def get_run(wh: Warehouse, run_id: str) -> dict[str, Any] | None:
    runs = wh.table("results", "model_runs")
    with wh.engine.connect() as conn:
        row = conn.execute(select(runs).where(runs.c.run_id == run_id)).mappings().one_or_none()
    return dict(row) if row else None
