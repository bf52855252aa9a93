"""The delivery manifest (``staging.deliveries``): one row per delivery, whatever became of it.

Ingest writes a delivery's row as ``loading`` before it loads (committed, so a killed run
leaves a trace), ``loaded`` with the staging rows, or ``failed`` with the error a data
manager can act on; validation sets ``promoted`` or ``blocked`` in its own transaction.
The content hash is the delivery id, so a delivery already ``loaded`` or ``promoted`` is
recognised and skipped.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, delete, select, update

from pipeline.sources.landing import DeliveryError
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


def is_done(wh: Warehouse, delivery_id: str) -> bool:
    manifest = wh.table("staging", "deliveries")
    with wh.engine.connect() as conn:
        status = conn.execute(
            select(manifest.c.status).where(manifest.c.delivery_id == delivery_id)
        ).scalar_one_or_none()
    return status in DONE_STATUSES


def record_failure(
    wh: Warehouse,
    source: str,
    location: str,
    delivery_id: str,
    sha256: str,
    exc: Exception,
    started: datetime,
) -> DeliveryOutcome:
    error = str(exc) if isinstance(exc, DeliveryError) else f"{location}: {one_line(exc)}"
    with wh.begin() as conn:
        write_entry(
            conn,
            wh,
            delivery_id,
            source,
            location,
            sha256 or sha_text(location),
            started,
            status="failed",
            error=error,
        )
    return DeliveryOutcome(delivery_id, location, "failed", 0, error)


def write_entry(
    conn: Connection,
    wh: Warehouse,
    delivery_id: str,
    source: str,
    location: str,
    sha256: str,
    started: datetime,
    *,
    status: str,
    error: str | None = None,
) -> None:
    """A delivery's manifest row, replacing any earlier one (``loading`` before a load,
    ``failed`` when it could not even start); a failed row is finished at once."""
    manifest = wh.table("staging", "deliveries")
    conn.execute(delete(manifest).where(manifest.c.delivery_id == delivery_id))
    conn.execute(
        manifest.insert().values(
            delivery_id=delivery_id,
            source=source,
            path=location,
            sha256=sha256,
            rows=0,
            status=status,
            error=error,
            started_at=started,
            finished_at=now() if status == "failed" else None,
        )
    )


def mark_delivery(
    wh: Warehouse,
    delivery_id: str,
    status: str,
    error: str | None = None,
    conn: Connection | None = None,
) -> None:
    """Set a delivery's manifest status, in ``conn``'s transaction when given."""
    manifest = wh.table("staging", "deliveries")
    change = (
        update(manifest)
        .where(manifest.c.delivery_id == delivery_id)
        .values(status=status, error=error, finished_at=now())
    )
    if conn is not None:
        conn.execute(change)
        return
    with wh.begin() as own:
        own.execute(change)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def sha_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def logged(outcome: DeliveryOutcome) -> DeliveryOutcome:
    log.info(
        "delivery %s (%s): %s, %d rows",
        outcome.delivery_id,
        outcome.path,
        outcome.status,
        outcome.rows,
    )
    if outcome.error:
        log.error("delivery %s failed: %s", outcome.delivery_id, outcome.error)
    return outcome
