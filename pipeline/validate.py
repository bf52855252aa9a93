"""Validate: staging -> quarantine + core, with every input row accounted for.

Per delivery, each staging row either reaches ``core`` or lands in
``quarantine.rows`` with the rule that failed and a message a data manager can act
on; ``rows in = rows promoted + rows quarantined`` is checked before anything commits.
Single-table rules are the GX suites under ``expectations/`` (run by
``pipeline.gx_runner`` on the staging columns they check, read once); rules that need
another table (unknown patients and treatments, implausible dose for the route,
overlapping administrations, treatment after death) are SQL in ``pipeline.cross_checks``,
run against staging and core in the same transaction. Clean rows never come back to
Python: each table is promoted with one ``INSERT INTO core ... SELECT`` from staging that
leaves out the delivery's quarantined rows (``pipeline.promotion``, typed by
``pipeline.typing_rules``). Rule ids, bounds and blocking are documented in
docs/validation.md.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, Table, delete, select

from pipeline import cross_checks
from pipeline.gx_runner import SchemaError
from pipeline.gx_runner import validate as run_gx
from pipeline.manifest import mark_delivery
from pipeline.promotion import analyze_staging, promote
from pipeline.schema import LANDING_REQUIRED, LANDING_TABLES, PATIENT_KEY, SOURCE_ROW
from pipeline.staging import prune as prune_staging
from pipeline.warehouse import Warehouse

log = logging.getLogger(__name__)


class ValidationBlocked(Exception):
    """Too much of a delivery failed validation to trust the rest; nothing was promoted."""


class StagingLost(Exception):
    """A loaded delivery's staging rows are gone (staging is UNLOGGED on PostgreSQL and is
    emptied by a server crash); the delivery is marked failed so the next ingest reloads it."""


@dataclass
class DeliveryValidation:
    delivery_id: str
    rows_in: dict[str, int] = field(default_factory=dict)
    promoted: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)  # clean rows a blocked delivery kept back
    failures: pd.DataFrame = field(default_factory=pd.DataFrame)
    blocking: list[str] = field(default_factory=list)
    # Wall seconds per step (read, gx, cross_table, promote): benchmarks and the log line.
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - started

    def check_accounting(self) -> None:
        """rows in = promoted + quarantined (+ held back when blocked), per table.

        A mismatch is a bug, never data: it raises before anything commits.
        """
        for table, rows in self.rows_in.items():
            promoted = self.promoted.get(table, 0)
            quarantined = self.quarantined.get(table, 0)
            held = self.held.get(table, 0)
            if rows != promoted + quarantined + held:
                raise AssertionError(
                    f"delivery {self.delivery_id} {table}: {rows} rows in but {promoted} "
                    f"promoted + {quarantined} quarantined + {held} held back"
                )


def validate(
    wh: Warehouse,
    run_id: str,
    *,
    blocking_share: float = 0.05,
    now: datetime | None = None,
) -> list[DeliveryValidation]:
    """Validate every loaded-but-unpromoted delivery, oldest first, and promote clean rows.

    Raises ValidationBlocked (after recording quarantine and dq rows) when a delivery
    has a broken schema or more than ``blocking_share`` of a table's rows fail.
    """
    manifest = wh.table("staging", "deliveries")
    with wh.engine.connect() as conn:
        pending = (
            conn.execute(
                select(manifest.c.delivery_id)
                .where(manifest.c.status == "loaded")
                .order_by(manifest.c.started_at)
            )
            .scalars()
            .all()
        )
    results = []
    for delivery_id in pending:
        result = validate_delivery(wh, run_id, delivery_id, blocking_share=blocking_share, now=now)
        results.append(result)
    blocked = [r for r in results if r.blocking]
    if blocked:
        lines = [f"{r.delivery_id}: {'; '.join(r.blocking)}" for r in blocked]
        raise ValidationBlocked(
            "validation blocked the run, nothing from these deliveries was promoted to core:\n  "
            + "\n  ".join(lines)
            + "\nSee every quarantined row with `relief dq`; fix the delivery at the source and "
            "re-deliver it, or raise blocking_failure_share if this share of bad rows is expected."
        )
    return results


def validate_delivery(
    wh: Warehouse,
    run_id: str,
    delivery_id: str,
    *,
    blocking_share: float = 0.05,
    now: datetime | None = None,
) -> DeliveryValidation:
    """Run all rules on one delivery; promote its clean rows unless a blocking rule fired.

    Staging is read once, only the columns the GX suites check: their failures go into
    quarantine, then the cross-table rules run as SQL against staging and core in the
    same transaction, and the clean rows are promoted by SQL, staging to core.
    """
    result = DeliveryValidation(delivery_id)
    expected_rows, source_files = _manifest_entry(wh, delivery_id)
    with result.timed("read"):
        staged = {t: _staging_rows(wh, t, delivery_id) for t in LANDING_TABLES}
    _check_staging_kept(wh, delivery_id, expected_rows, staged)
    failures: list[pd.DataFrame] = []
    summaries: list[pd.DataFrame] = []
    for table, frame in staged.items():
        result.rows_in[table] = len(frame)
        if frame.empty:
            continue
        try:
            # GX rules speak the landing contract; the pseudonym stands in for the raw id.
            with result.timed("gx"):
                checked = run_gx(table, frame.rename(columns={PATIENT_KEY: "patient_id"}), now=now)
        except SchemaError as exc:
            result.blocking.append(str(exc))
            continue
        failures.append(checked.failures.assign(source_table=table))
        summaries.append(checked.summary.assign(source_table=table))
    single = pd.concat(failures, ignore_index=True) if failures else _empty_failures()
    quarantine = wh.table("quarantine", "rows")
    with wh.begin() as conn:
        conn.execute(delete(quarantine).where(quarantine.c.delivery_id == delivery_id))
        wh.insert_frame(
            conn, quarantine, _quarantine_rows(single, delivery_id, run_id, source_files)
        )
        with result.timed("cross_table"):
            analyze_staging(wh, conn)
            cross = cross_checks.run(wh, conn, delivery_id, run_id, source_files)
        bad = _quarantined_rows(conn, quarantine, delivery_id)
        _account(result, staged, bad, blocking_share)
        result.failures = wh.read(
            "quarantine", "rows", quarantine.c.delivery_id == delivery_id, conn
        )
        _write(wh, conn, run_id, result, _rule_counts(summaries, cross, result))
        mark_delivery(
            wh,
            delivery_id,
            "blocked" if result.blocking else "promoted",
            "; ".join(result.blocking) or None,
            conn,
        )
    log.info(
        "delivery %s: in %s, promoted %s, quarantined %s (%s)",
        delivery_id,
        result.rows_in,
        result.promoted,
        result.quarantined,
        ", ".join(f"{step} {s:.1f} s" for step, s in result.seconds.items()),
    )
    return result


def _manifest_entry(wh: Warehouse, delivery_id: str) -> tuple[int | None, dict[str, str]]:
    """Rows the manifest says were staged, and each table's landing file name."""
    manifest = wh.table("staging", "deliveries")
    with wh.engine.connect() as conn:
        found = conn.execute(
            select(manifest.c.rows, manifest.c.files).where(manifest.c.delivery_id == delivery_id)
        ).first()
    if found is None:
        return None, {}
    files = json.loads(found.files) if found.files else {}
    return found.rows, {t: f.get("file") for t, f in files.items()}


def _check_staging_kept(
    wh: Warehouse, delivery_id: str, expected: int | None, staged: dict[str, pd.DataFrame]
) -> None:
    """Staging is UNLOGGED on PostgreSQL: after a server crash it is empty. Never promote
    a delivery whose staging rows are not all there; send it back to ingest instead."""
    found = sum(len(f) for f in staged.values())
    if expected is None or found == expected:
        return
    message = (
        f"staging holds {found} of the {expected} rows loaded for delivery {delivery_id} "
        "(staging is not crash-safe: a database crash empties it); run `relief ingest` "
        "again to reload the delivery, then validate"
    )
    mark_delivery(wh, delivery_id, "failed", message)
    raise StagingLost(message)


def _quarantine_rows(
    failures: pd.DataFrame, delivery_id: str, run_id: str, source_files: dict[str, str]
) -> pd.DataFrame:
    return failures.assign(
        delivery_id=delivery_id,
        source_file=failures["source_table"].map(source_files),
        column_name=failures["column"],
        run_id=run_id,
    )


def _quarantined_rows(conn: Connection, quarantine: Table, delivery_id: str) -> pd.DataFrame:
    """(source_table, source_row, rule_id): the first rule per quarantined row."""
    query = select(quarantine.c.source_table, quarantine.c.source_row, quarantine.c.rule_id).where(
        quarantine.c.delivery_id == delivery_id
    )
    return pd.DataFrame(conn.execute(query).all(), columns=["source_table", SOURCE_ROW, "rule_id"])


def _account(
    result: DeliveryValidation,
    staged: dict[str, pd.DataFrame],
    bad: pd.DataFrame,
    blocking_share: float,
) -> None:
    """Count each table's clean and quarantined rows; decide blocking; check the sums."""
    for table, frame in staged.items():
        failed = bad.loc[bad.source_table == table]
        keep = ~frame[SOURCE_ROW].isin(failed[SOURCE_ROW])
        result.quarantined[table] = int((~keep).sum())
        result.promoted[table] = int(keep.sum())
        share = result.quarantined[table] / max(len(frame), 1)
        if share > blocking_share:
            top = failed.drop_duplicates(SOURCE_ROW)["rule_id"].value_counts().head(3)
            rules = ", ".join(f"{rule} ({n} rows)" for rule, n in top.items())
            result.blocking.append(
                f"{table}: {result.quarantined[table]} of {len(frame)} rows ({share:.1%}) failed "
                f"validation, more than the allowed {blocking_share:.0%}; most common: {rules}"
            )
    result.check_accounting()


def _write(
    wh: Warehouse,
    conn: Connection,
    run_id: str,
    result: DeliveryValidation,
    rule_counts: pd.DataFrame,
) -> None:
    """dq results and (unless blocked) core rows, in the caller's transaction; a promoted
    delivery's staging rows go in the same transaction (pipeline/staging.py)."""
    dq = wh.table("dq", "validation_results")
    conn.execute(delete(dq).where(dq.c.delivery_id == result.delivery_id))
    wh.insert_frame(conn, dq, _dq_rows(result, run_id, rule_counts))
    if result.blocking:
        result.held = dict(result.promoted)
        result.promoted = {t: 0 for t in result.promoted}
        result.check_accounting()
        return
    with result.timed("promote"):
        for table in LANDING_TABLES:
            if result.promoted.get(table):
                promote(wh, conn, table, result.delivery_id)
        prune_staging(wh, conn, result.delivery_id)


def _rule_counts(
    summaries: list[pd.DataFrame], cross: dict[str, int], result: DeliveryValidation
) -> pd.DataFrame:
    """One row per rule (GX expectation or cross rule): rows checked, rows quarantined."""
    gx = (
        pd.concat(summaries, ignore_index=True)
        if summaries
        else pd.DataFrame(columns=["source_table", "rule_id", "evaluated", "reported"])
    )
    gx = gx.rename(columns={"evaluated": "rows_checked", "reported": "rows_failed"})
    rules = {r.rule_id: r.table for r in cross_checks.RULES}
    sql = pd.DataFrame(
        {
            "source_table": [rules[r] for r in cross],
            "rule_id": list(cross),
            "rows_checked": [result.rows_in.get(rules[r], 0) for r in cross],
            "rows_failed": list(cross.values()),
        }
    )
    return pd.concat(
        [gx[["source_table", "rule_id", "rows_checked", "rows_failed"]], sql], ignore_index=True
    )


def _dq_rows(result: DeliveryValidation, run_id: str, rule_counts: pd.DataFrame) -> pd.DataFrame:
    """Every rule's counts plus one ``<table>.all_rules`` row per table (rows quarantined)."""
    totals = pd.DataFrame(
        {
            "source_table": list(result.rows_in),
            "rule_id": [f"{t}.all_rules" for t in result.rows_in],
            "rows_checked": list(result.rows_in.values()),
            "rows_failed": [result.quarantined.get(t, 0) for t in result.rows_in],
        }
    )
    out = pd.concat([rule_counts, totals], ignore_index=True)
    out["rows_checked"] = out["rows_checked"].astype("int64")
    out["rows_failed"] = out["rows_failed"].astype("int64")
    out["success"] = out["rows_failed"] == 0
    return out.assign(run_id=run_id, delivery_id=result.delivery_id)


def _staging_rows(wh: Warehouse, table: str, delivery_id: str) -> pd.DataFrame:
    """The delivery's staging rows of ``table``: source_row and the columns GX checks."""
    columns = [
        SOURCE_ROW,
        *(PATIENT_KEY if c == "patient_id" else c for c in LANDING_REQUIRED[table]),
    ]
    frame = wh.read_text_columns("staging", table, columns, delivery_id)
    if frame[SOURCE_ROW].is_monotonic_increasing:  # as loaded, usually: no 10 M-row sort
        return frame
    return frame.sort_values(SOURCE_ROW, kind="stable").reset_index(drop=True)


def _empty_failures() -> pd.DataFrame:
    return pd.DataFrame(
        columns=[SOURCE_ROW, "rule_id", "column", "value", "message", "source_table"]
    )
