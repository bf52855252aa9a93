"""Ingest: landing deliveries -> pseudonymised staging rows, recorded in the manifest.

One transaction per delivery: its staging rows and its manifest row commit together,
so a run killed mid-load leaves nothing half-loaded and the next run loads it again.
A delivery whose files hash to a manifest entry already loaded is skipped: the same
files twice load nothing new.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import delete, select, update

from pipeline.pseudonym import pseudonymise
from pipeline.schema import DELIVERY_ID, LANDING_REQUIRED, PATIENT_KEY, SOURCE_FILE
from pipeline.sources.landing import (
    DeliveryError,
    RawTable,
    delivery_files,
    file_sha256,
    find_deliveries,
    read_table,
)
from pipeline.warehouse import Warehouse

log = logging.getLogger(__name__)

DONE_STATUSES = ("loaded", "promoted")


@dataclass(frozen=True)
class DeliveryOutcome:
    delivery_id: str
    path: str
    status: str  # loaded | skipped | failed
    rows: int
    error: str | None = None


def delivery_id_for(files: dict[str, str]) -> str:
    """A content address: the same files (by hash) always give the same delivery id."""
    digest = hashlib.sha256(json.dumps(sorted(files.items())).encode()).hexdigest()
    return f"d{digest[:15]}"


def ingest(wh: Warehouse, landing: Path, pseudonym_key: str) -> list[DeliveryOutcome]:
    """Load every new delivery under ``landing``; a bad delivery fails alone, the rest load."""
    outcomes = []
    for folder in find_deliveries(landing):
        outcome = load_delivery(wh, folder, pseudonym_key)
        log.info(
            "delivery %s (%s): %s, %d rows",
            outcome.delivery_id,
            folder,
            outcome.status,
            outcome.rows,
        )
        if outcome.error:
            log.error("delivery %s failed: %s", folder, outcome.error)
        outcomes.append(outcome)
    return outcomes


def load_delivery(wh: Warehouse, folder: Path, pseudonym_key: str) -> DeliveryOutcome:
    started = _now()
    try:
        paths = delivery_files(folder)
        hashes = {table: file_sha256(path) for table, path in paths.items()}
    except (DeliveryError, OSError) as exc:
        return _record_failure(wh, folder, f"f{_sha_text(str(folder))[:15]}", exc, started, {})
    delivery_id = delivery_id_for(hashes)
    manifest = wh.table("staging", "deliveries")
    with wh.engine.connect() as conn:
        status = conn.execute(
            select(manifest.c.status).where(manifest.c.delivery_id == delivery_id)
        ).scalar_one_or_none()
    if status in DONE_STATUSES:
        return DeliveryOutcome(delivery_id, str(folder), "skipped", 0)
    try:
        raws = {table: read_table(table, path, hashes[table]) for table, path in paths.items()}
    except DeliveryError as exc:
        return _record_failure(wh, folder, delivery_id, exc, started, hashes)
    frames = {table: to_staging(raw, delivery_id, pseudonym_key) for table, raw in raws.items()}
    rows = sum(len(f) for f in frames.values())
    files = {
        t: {"file": r.path.name, "sha256": r.sha256, "rows": len(r.frame)} for t, r in raws.items()
    }
    with wh.begin() as conn:
        conn.execute(delete(manifest).where(manifest.c.delivery_id == delivery_id))
        for table, frame in frames.items():
            staging = wh.table("staging", table)
            conn.execute(delete(staging).where(staging.c.delivery_id == delivery_id))
            wh.insert_frame(conn, staging, frame)
        conn.execute(
            manifest.insert().values(
                delivery_id=delivery_id,
                source="landing",
                path=str(folder),
                sha256=_sha_text(json.dumps(sorted(hashes.items()))),
                files=json.dumps(files, sort_keys=True),
                rows=rows,
                status="loaded",
                started_at=started,
                finished_at=_now(),
            )
        )
    return DeliveryOutcome(delivery_id, str(folder), "loaded", rows)


def to_staging(raw: RawTable, delivery_id: str, pseudonym_key: str) -> pd.DataFrame:
    """Pseudonymise, add lineage, and fold columns beyond the contract into ``extra`` JSON."""
    frame = raw.frame
    required = LANDING_REQUIRED[raw.table]
    extras = [c for c in frame.columns if c not in required and c != "source_row"]
    out = frame[["source_row", *[c for c in required if c != "patient_id"]]].copy()
    if "patient_id" in required:
        out.insert(1, PATIENT_KEY, pseudonymise(frame["patient_id"], pseudonym_key))
    if extras:
        out["extra"] = [json.dumps(r, default=str) for r in frame[extras].to_dict("records")]
    out.insert(0, SOURCE_FILE, raw.path.name)
    out.insert(0, DELIVERY_ID, delivery_id)
    return out


def _record_failure(
    wh: Warehouse,
    folder: Path,
    delivery_id: str,
    exc: Exception,
    started: datetime,
    hashes: dict[str, str],
) -> DeliveryOutcome:
    manifest = wh.table("staging", "deliveries")
    with wh.begin() as conn:
        conn.execute(delete(manifest).where(manifest.c.delivery_id == delivery_id))
        conn.execute(
            manifest.insert().values(
                delivery_id=delivery_id,
                source="landing",
                path=str(folder),
                sha256=_sha_text(json.dumps(sorted(hashes.items()))),
                rows=0,
                status="failed",
                error=str(exc),
                started_at=started,
                finished_at=_now(),
            )
        )
    return DeliveryOutcome(delivery_id, str(folder), "failed", 0, str(exc))


def mark_delivery(wh: Warehouse, delivery_id: str, status: str, error: str | None = None) -> None:
    manifest = wh.table("staging", "deliveries")
    with wh.begin() as conn:
        conn.execute(
            update(manifest)
            .where(manifest.c.delivery_id == delivery_id)
            .values(status=status, error=error, finished_at=_now())
        )


def _sha_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
