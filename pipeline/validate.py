"""Validate: staging -> quarantine + core, with every input row accounted for.

Per delivery, each staging row either reaches ``core`` or lands in
``quarantine.rows`` with the rule that failed and a message a data manager can act
on; ``rows in = rows promoted + rows quarantined`` is checked before anything commits.
Single-table rules are the GX suites under ``expectations/`` (run by
``pipeline.gx_runner``); rules that need another table (unknown patients, adverse
events of unknown treatments, implausible dose for the route) are in
``pipeline.cross_checks``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, delete, select

from pipeline import cross_checks
from pipeline.gx_runner import SchemaError, run_suite
from pipeline.ingest import mark_delivery
from pipeline.schema import CORE_COLUMNS, LANDING_TABLES, NATURAL_KEYS, PATIENT_KEY, SOURCE_ROW
from pipeline.typing_rules import to_core_types
from pipeline.warehouse import Warehouse, chunks

log = logging.getLogger(__name__)


class ValidationBlocked(Exception):
    """Too much of a delivery failed validation to trust the rest; nothing was promoted."""


@dataclass
class DeliveryValidation:
    delivery_id: str
    rows_in: dict[str, int] = field(default_factory=dict)
    promoted: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    failures: pd.DataFrame = field(default_factory=pd.DataFrame)
    blocking: list[str] = field(default_factory=list)

    def check_accounting(self) -> None:
        """rows in = promoted + quarantined, per table; a mismatch is a bug, never data."""
        for table, rows in self.rows_in.items():
            accounted = self.promoted.get(table, 0) + self.quarantined.get(table, 0)
            if rows != accounted:
                raise AssertionError(
                    f"delivery {self.delivery_id} {table}: {rows} rows in but "
                    f"{self.promoted.get(table, 0)} promoted + {self.quarantined.get(table, 0)} quarantined"
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
            + "\nFix the delivery at the source and re-deliver, or raise blocking_failure_share."
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
    """Run all rules on one delivery; promote its clean rows unless a blocking rule fired."""
    result = DeliveryValidation(delivery_id)
    staged = {t: _staging_rows(wh, t, delivery_id) for t in LANDING_TABLES}
    failures: list[pd.DataFrame] = []
    for table, frame in staged.items():
        result.rows_in[table] = len(frame)
        if frame.empty:
            continue
        try:
            # GX rules speak the landing contract; the pseudonym stands in for the raw id.
            failed = run_suite(table, frame.rename(columns={PATIENT_KEY: "patient_id"}), now=now)
        except SchemaError as exc:
            result.blocking.append(str(exc))
            continue
        failures.append(failed.assign(source_table=table))
    typed = {t: to_core_types(t, f) for t, f in staged.items()}
    known = cross_checks.known_keys(wh)
    single = pd.concat(failures, ignore_index=True) if failures else _empty_failures()
    failures.append(cross_checks.run(typed, single, known))
    all_failures = pd.concat(failures, ignore_index=True) if failures else _empty_failures()
    result.failures = all_failures
    clean: dict[str, pd.DataFrame] = {}
    for table, frame in typed.items():
        bad_rows = set(all_failures.loc[all_failures.source_table == table, SOURCE_ROW])
        keep = ~frame[SOURCE_ROW].isin(bad_rows)
        clean[table] = frame.loc[keep]
        result.quarantined[table] = int((~keep).sum())
        result.promoted[table] = int(keep.sum())
        share = result.quarantined[table] / max(len(frame), 1)
        if share > blocking_share:
            result.blocking.append(
                f"{table}: {result.quarantined[table]} of {len(frame)} rows ({share:.1%}) failed "
                f"validation, more than the allowed {blocking_share:.0%}"
            )
    result.check_accounting()
    if result.blocking:
        result.promoted = {t: 0 for t in result.promoted}
    _write(wh, run_id, result, staged, clean)
    return result


def _write(
    wh: Warehouse,
    run_id: str,
    result: DeliveryValidation,
    staged: dict[str, pd.DataFrame],
    clean: dict[str, pd.DataFrame],
) -> None:
    """Quarantine, dq results and (unless blocked) core rows, in one transaction."""
    quarantine = wh.table("quarantine", "rows")
    dq = wh.table("dq", "validation_results")
    failures = result.failures
    source_files = {t: f["source_file"].iloc[0] for t, f in staged.items() if not f.empty}
    rows = failures.assign(
        delivery_id=result.delivery_id,
        source_file=failures["source_table"].map(source_files),
        column_name=failures["column"],
        run_id=run_id,
    )
    with wh.begin() as conn:
        conn.execute(delete(quarantine).where(quarantine.c.delivery_id == result.delivery_id))
        wh.insert_frame(conn, quarantine, rows)
        conn.execute(delete(dq).where(dq.c.delivery_id == result.delivery_id))
        wh.insert_frame(conn, dq, _dq_rows(result, run_id))
        if not result.blocking:
            for table in LANDING_TABLES:
                _upsert_core(wh, conn, table, clean[table].assign(delivery_id=result.delivery_id))
    mark_delivery(
        wh,
        result.delivery_id,
        "blocked" if result.blocking else "promoted",
        "; ".join(result.blocking) or None,
    )
    log.info(
        "delivery %s: in %s, promoted %s, quarantined %s",
        result.delivery_id,
        result.rows_in,
        result.promoted,
        result.quarantined,
    )


def _dq_rows(result: DeliveryValidation, run_id: str) -> pd.DataFrame:
    failures = result.failures
    counts = (
        failures.groupby(["source_table", "rule_id"])[SOURCE_ROW]
        .nunique()
        .rename("rows_failed")
        .reset_index()
        if not failures.empty
        else pd.DataFrame(columns=["source_table", "rule_id", "rows_failed"])
    )
    totals = pd.DataFrame(
        {
            "source_table": list(result.rows_in),
            "rule_id": [f"{t}.all_rules" for t in result.rows_in],
            "rows_failed": [result.quarantined.get(t, 0) for t in result.rows_in],
        }
    )
    out = pd.concat([counts, totals], ignore_index=True)
    out["rows_checked"] = out["source_table"].map(result.rows_in)
    out["success"] = out["rows_failed"] == 0
    return out.assign(run_id=run_id, delivery_id=result.delivery_id)


def _upsert_core(wh: Warehouse, conn: Connection, table: str, frame: pd.DataFrame) -> None:
    """Replace rows with the same natural key, then insert: a corrected re-delivery wins."""
    if frame.empty:
        return
    core = wh.table("core", table)
    keys = list(NATURAL_KEYS[table])
    frame = frame.drop_duplicates(subset=keys, keep="last")
    frame = frame.assign(natural_key=natural_key(frame, keys))
    for part in chunks(frame["natural_key"].tolist()):
        conn.execute(delete(core).where(core.c.natural_key.in_(part)))
    wh.insert_frame(
        conn, core, frame[[*CORE_COLUMNS[table], "natural_key", "delivery_id", SOURCE_ROW]]
    )


def natural_key(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    """One text key per row (values joined by "|", timestamps in ISO form)."""
    parts = [
        frame[k].dt.strftime("%Y-%m-%dT%H:%M:%S")
        if pd.api.types.is_datetime64_any_dtype(frame[k])
        else frame[k].astype(str)
        for k in keys
    ]
    key = parts[0]
    for part in parts[1:]:
        key = key + "|" + part
    return key


def _staging_rows(wh: Warehouse, table: str, delivery_id: str) -> pd.DataFrame:
    staging = wh.table("staging", table)
    frame = wh.read("staging", table, staging.c.delivery_id == delivery_id)
    return frame.sort_values(SOURCE_ROW, kind="stable").reset_index(drop=True)


def _empty_failures() -> pd.DataFrame:
    return pd.DataFrame(
        columns=[SOURCE_ROW, "rule_id", "column", "value", "message", "source_table"]
    )
