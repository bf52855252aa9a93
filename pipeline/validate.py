"""Validate: staging -> quarantine + core, with every input row accounted for.

Per delivery, each staging row either reaches ``core`` or lands in
``quarantine.rows`` with the rule that failed and a message a data manager can act
on; ``rows in = rows promoted + rows quarantined`` is checked before anything commits,
with "rows in" as ingest counted them and "promoted" as the database copied them.
Single-table rules are the GX suites under ``expectations/``, which ingest already ran
on the rows as it staged them (``pipeline.row_checks``): their failures wait in
``staging.row_failures`` and are quarantined here by SQL. Rules that need
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
from typing import Any, NoReturn

import pandas as pd
from sqlalchemy import Connection, String, Table, Text, case, delete, exists, literal, null, select

from pipeline import cross_checks
from pipeline.manifest import mark_delivery
from pipeline.promotion import analyze_staging, promote
from pipeline.schema import LANDING_TABLES, SOURCE_ROW
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
) -> list[DeliveryValidation]:
    """Validate every loaded-but-unpromoted delivery, oldest first, and promote clean rows.

    Raises ValidationBlocked (after recording quarantine and dq rows) when more than
    ``blocking_share`` of a table's rows of a delivery fail. (A file whose schema is
    broken never gets this far: ingest fails the delivery and names the file.)
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
        result = validate_delivery(wh, run_id, delivery_id, blocking_share=blocking_share)
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
) -> DeliveryValidation:
    """Quarantine what the row checks found, run the cross-table rules, promote the rest.

    Nothing is read into Python but failures and counts: the GX suites ran at ingest
    (``pipeline.row_checks``), so their failing rows are copied from
    ``staging.row_failures`` into quarantine by SQL; the cross-table rules then run as
    SQL against staging and core in the same transaction, and the clean rows are
    promoted by SQL, staging to core.
    """
    result = DeliveryValidation(delivery_id)
    entry = _manifest_entry(wh, delivery_id)
    result.rows_in = {t: int(entry.get(t, {}).get("rows", 0)) for t in LANDING_TABLES}
    source_files = {t: f.get("file") for t, f in entry.items()}
    _check_staging_kept(wh, delivery_id, result.rows_in)
    quarantine = wh.table("quarantine", "rows")
    try:
        with wh.begin() as conn:
            if wh.dialect == "postgresql":
                # Validation's statements scan and join millions of rows once: compiling
                # them (PostgreSQL's JIT) cost 1.3-1.5 s per statement, more than running them.
                conn.exec_driver_sql("SET LOCAL jit = off")
            conn.execute(delete(quarantine).where(quarantine.c.delivery_id == delivery_id))
            with result.timed("row_rules"):
                _quarantine_row_failures(wh, conn, delivery_id, run_id, source_files)
            with result.timed("cross_table"):
                analyze_staging(wh, conn)
                cross = cross_checks.run(wh, conn, delivery_id, run_id, source_files)
            bad = _quarantined_rows(conn, quarantine, delivery_id)
            _account(result, bad, blocking_share)
            result.failures = wh.read(
                "quarantine", "rows", quarantine.c.delivery_id == delivery_id, conn
            )
            _write(wh, conn, run_id, result, _rule_counts(entry, cross, result))
            mark_delivery(
                wh,
                delivery_id,
                "blocked" if result.blocking else "promoted",
                "; ".join(result.blocking) or None,
                conn,
            )
    except _RowsMissing as missing:  # rolled back: nothing of the delivery was promoted
        _lost(wh, delivery_id, str(missing))
    log.info(
        "delivery %s: in %s, promoted %s, quarantined %s (%s)",
        delivery_id,
        result.rows_in,
        result.promoted,
        result.quarantined,
        ", ".join(f"{step} {s:.1f} s" for step, s in result.seconds.items()),
    )
    return result


def _manifest_entry(wh: Warehouse, delivery_id: str) -> dict[str, dict[str, Any]]:
    """The manifest's ``files``: per table its file, rows and row-check counts."""
    manifest = wh.table("staging", "deliveries")
    with wh.engine.connect() as conn:
        files = conn.execute(
            select(manifest.c.files).where(manifest.c.delivery_id == delivery_id)
        ).scalar_one_or_none()
    return json.loads(files) if files else {}


class _RowsMissing(Exception):
    """Promotion found fewer staging rows than ingest loaded (raised inside the
    transaction, so that nothing of the delivery is promoted)."""


def _lost(wh: Warehouse, delivery_id: str, what: str) -> NoReturn:
    message = (
        f"{what} (staging is not crash-safe: a database crash empties it); run `relief "
        "ingest` again to reload the delivery, then validate"
    )
    mark_delivery(wh, delivery_id, "failed", message)
    raise StagingLost(message)


def _check_staging_kept(wh: Warehouse, delivery_id: str, rows_in: dict[str, int]) -> None:
    """Staging is UNLOGGED on PostgreSQL: a server crash empties its tables. Never use a
    delivery with a staging table emptied; send it back to ingest instead.

    A crash empties a whole table, so one row of the delivery per table shows it was
    kept (staging holds few deliveries: the scan stops at once). Promotion then checks
    the exact count (``promote`` returns the rows it copied).
    """
    with wh.engine.connect() as conn:
        for table, rows in rows_in.items():
            staging = wh.table("staging", table)
            if (
                rows
                and not conn.execute(
                    select(exists().where(staging.c.delivery_id == delivery_id))
                ).scalar()
            ):
                _lost(
                    wh,
                    delivery_id,
                    f"staging holds none of the {rows} {table} rows loaded for delivery {delivery_id}",
                )


def _quarantine_row_failures(
    wh: Warehouse, conn: Connection, delivery_id: str, run_id: str, source_files: dict[str, str]
) -> None:
    """The delivery's row-check failures into quarantine, with the file and this run."""
    found, quarantine = wh.table("staging", "row_failures"), wh.table("quarantine", "rows")
    named = [(found.c.source_table == t, literal(f, Text)) for t, f in source_files.items() if f]
    source_file = case(*named, else_=null()) if named else null()
    columns = ("source_table", "source_row", "rule_id", "column_name", "value", "message")
    conn.execute(
        quarantine.insert().from_select(
            ["delivery_id", *columns, "source_file", "run_id"],
            select(
                found.c.delivery_id,
                *(found.c[c] for c in columns),
                source_file,
                literal(run_id, String(64)),
            ).where(found.c.delivery_id == delivery_id),
        )
    )


def _quarantined_rows(conn: Connection, quarantine: Table, delivery_id: str) -> pd.DataFrame:
    """(source_table, source_row, rule_id): the first rule per quarantined row."""
    query = select(quarantine.c.source_table, quarantine.c.source_row, quarantine.c.rule_id).where(
        quarantine.c.delivery_id == delivery_id
    )
    return pd.DataFrame(conn.execute(query).all(), columns=["source_table", SOURCE_ROW, "rule_id"])


def _account(result: DeliveryValidation, bad: pd.DataFrame, blocking_share: float) -> None:
    """Count each table's quarantined and clean rows; decide blocking; check the sums."""
    for table, rows in result.rows_in.items():
        failed = bad.loc[bad.source_table == table]
        result.quarantined[table] = int(failed[SOURCE_ROW].nunique())
        result.promoted[table] = rows - result.quarantined[table]
        share = result.quarantined[table] / max(rows, 1)
        if share > blocking_share:
            top = failed.drop_duplicates(SOURCE_ROW)["rule_id"].value_counts().head(3)
            rules = ", ".join(f"{rule} ({n} rows)" for rule, n in top.items())
            result.blocking.append(
                f"{table}: {result.quarantined[table]} of {rows} rows ({share:.1%}) failed "
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
                copied = promote(wh, conn, table, result.delivery_id)
                if copied != result.promoted[table]:  # rows in = promoted + quarantined
                    raise _RowsMissing(
                        f"staging holds {copied + result.quarantined[table]} of the "
                        f"{result.rows_in[table]} {table} rows loaded for delivery "
                        f"{result.delivery_id}"
                    )
        prune_staging(wh, conn, result.delivery_id)


def _rule_counts(
    entry: dict[str, dict[str, Any]], cross: dict[str, int], result: DeliveryValidation
) -> pd.DataFrame:
    """One row per rule (GX expectation or cross rule): rows checked, rows quarantined.

    The GX rules' counts are the ones ingest's row checks stored in the manifest.
    """
    gx = pd.DataFrame(
        [
            {
                "source_table": table,
                "rule_id": rule["rule_id"],
                "rows_checked": rule["evaluated"],
                "rows_failed": rule["reported"],
            }
            for table in LANDING_TABLES
            for rule in entry.get(table, {}).get("rules", [])
        ],
        columns=["source_table", "rule_id", "rows_checked", "rows_failed"],
    )
    rules = {r.rule_id: r.table for r in cross_checks.RULES}
    sql = pd.DataFrame(
        {
            "source_table": [rules[r] for r in cross],
            "rule_id": list(cross),
            "rows_checked": [result.rows_in.get(rules[r], 0) for r in cross],
            "rows_failed": list(cross.values()),
        }
    )
    return pd.concat([gx, sql], ignore_index=True)


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
