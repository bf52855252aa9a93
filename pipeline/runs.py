"""Run lineage: one ``results.model_runs`` row per run, updated as stages finish, and the
refit policy that reads it.

A run's results are trustworthy only when its status is ``success``; researcher
views filter on that, so a failed or half-finished run never shows. A nightly run whose
model stage the refit policy skipped ends ``no_refit``: it ingested, validated and
derived, and the last fit's results and report stay the current ones (the views keep
showing that fit, the last ``success``).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update

from pipeline.config import RefitPolicy, Settings
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


def clear_run_rows(wh: Warehouse, run_id: str) -> None:
    """Remove a run's rows from every results table and its episode snapshot (an earlier
    attempt's, when a re-run of the run decides not to refit)."""
    tables = [wh.table("analysis", "episodes")] + [
        t
        for t in wh.metadata.tables.values()
        if (t.schema or t.name.split("__", 1)[0]) == "results"
        and "run_id" in t.c
        and not t.name.endswith("model_runs")
    ]
    with wh.begin() as conn:
        for table in tables:
            conn.execute(delete(table).where(table.c.run_id == run_id))


# --- refit policy -----------------------------------------------------------------------


@dataclass(frozen=True)
class LastFit:
    """The latest fit before a run: what the refit policy weighs against it."""

    run_id: str
    finished_at: datetime
    parameters: dict[str, Any]
    episodes: int  # episodes that fit used
    new_episodes: int  # current episodes derived after it (new or re-derived patients)
    report_path: str | None = None


@dataclass(frozen=True)
class RefitDecision:
    refit: bool
    reason: str
    last_fit: str | None = None
    report_path: str | None = None  # the report that stays current when not refitting


def fitted_settings(settings: Settings) -> dict[str, Any]:
    """The settings a fit's results depend on, as model_runs.parameters records them."""
    chosen = {
        "outcome": asdict(settings.outcome),
        "models": asdict(settings.models),
        "min_cell_count": settings.min_cell_count,
    }
    return json.loads(json.dumps(chosen, default=str))


def decide_refit(
    policy: RefitPolicy,
    settings: dict[str, Any],
    last: LastFit | None,
    now: datetime,
    *,
    requested: bool = False,
) -> RefitDecision:
    """Refit or keep the last fit (docs/decisions.md, "Incremental nights").

    Refit when asked to, when there is no earlier fit, when the outcome, model or report
    settings (``fitted_settings``) differ from the last fit's, when the episodes new or
    re-derived since the last fit exceed ``policy.min_new_share`` of the episodes it used,
    or when it is older than ``policy.max_age_days``; otherwise keep it.
    """
    if requested:
        return RefitDecision(True, "refit requested", last.run_id if last else None)
    if last is None:
        return RefitDecision(True, "no earlier fit")
    changed = [k for k, v in settings.items() if last.parameters.get(k) != v]
    if changed:
        names = ", ".join(k.replace("_", " ") for k in changed)
        return RefitDecision(True, f"{names} settings changed since fit {last.run_id}", last.run_id)
    if last.episodes <= 0:
        return RefitDecision(True, f"fit {last.run_id} kept no episodes", last.run_id)
    share = last.new_episodes / last.episodes
    days = (now - last.finished_at).total_seconds() / 86400
    growth = (
        f"{last.new_episodes} episodes new or re-derived since fit {last.run_id} "
        f"({share:.1%} of its {last.episodes}"
    )
    if share > policy.min_new_share:
        return RefitDecision(True, f"{growth} > {policy.min_new_share:.1%})", last.run_id)
    if days > policy.max_age_days:
        reason = f"fit {last.run_id} is {days:.1f} days old (> {policy.max_age_days:g})"
        return RefitDecision(True, reason, last.run_id)
    reason = (
        f"{growth} <= {policy.min_new_share:.1%}), fit {days:.1f} days old "
        f"(<= {policy.max_age_days:g}): its results and report stay current"
    )
    return RefitDecision(False, reason, last.run_id, last.report_path)


def last_fit(wh: Warehouse, run_id: str) -> LastFit | None:
    """The latest successful non-analyst run that started before ``run_id`` (else None).

    Its episodes are its snapshot in ``analysis.episodes``; the new ones are the current
    episodes derived by any run other than it or those started before it.
    """
    runs = wh.table("results", "model_runs")
    snapshot = wh.table("analysis", "episodes")
    current = wh.table("analysis", "current_episodes")
    fits = select(runs).where(
        runs.c.status == "success", runs.c.trigger != "analyst", runs.c.run_id != run_id
    )
    this = get_run(wh, run_id)
    if this and this.get("started_at"):
        fits = fits.where(runs.c.started_at < this["started_at"])
    with wh.engine.connect() as conn:
        fit = (
            conn.execute(fits.order_by(runs.c.finished_at.desc(), runs.c.run_id.desc()).limit(1))
            .mappings()
            .first()
        )
        if fit is None:
            return None
        used = select(func.count()).where(snapshot.c.run_id == fit["run_id"])
        earlier = select(runs.c.run_id).where(runs.c.started_at <= fit["started_at"])
        new = select(func.count()).where(
            current.c.run_id != fit["run_id"], current.c.run_id.not_in(earlier)
        )
        episodes, new_episodes = conn.execute(used).scalar_one(), conn.execute(new).scalar_one()
    return LastFit(
        run_id=fit["run_id"],
        finished_at=fit["finished_at"] or fit["started_at"],
        parameters=json.loads(fit["parameters"] or "{}"),
        episodes=int(episodes),
        new_episodes=int(new_episodes),
        report_path=fit["report_path"],
    )


def refit_decision(
    wh: Warehouse, run_id: str, settings: Settings, *, requested: bool = False
) -> RefitDecision:
    """The refit policy applied to this warehouse's run history for ``run_id``."""
    return decide_refit(
        settings.refit,
        fitted_settings(settings),
        last_fit(wh, run_id),
        now(),
        requested=requested or settings.refit.always,
    )
