"""Ingest: source deliveries -> pseudonymised staging rows, recorded in the manifest.

Every source (landing files, OMOP CDM, FHIR bulk export, REDCap) is read into
``RawTable``s in the landing contract; from there the path is shared. A delivery is
first recorded as ``loading`` (committed, so a killed run leaves a visible trace), then
its staging rows and its ``loaded`` manifest row commit in one transaction: a run killed
mid-load leaves no staging rows behind and the next run loads the delivery again.
A delivery whose content hashes to a manifest entry already loaded is skipped: the
same files twice load nothing new. A corrected re-delivery has a new hash, loads as a
new delivery, and replaces core rows by natural key in validation.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import delete, update

from pipeline.arrow_pool import use_jemalloc
from pipeline.manifest import (
    DeliveryOutcome,
    is_done,
    logged,
    now,
    record_failure,
    sha_text,
    write_entry,
)
from pipeline.pseudonym import Pseudonymiser
from pipeline.row_checks import DeliveryChecks, TableChecks
from pipeline.schema import DELIVERY_ID, LANDING_REQUIRED, PATIENT_KEY, SOURCE_ROW
from pipeline.sources.landing import (
    CsvStream,
    DeliveryError,
    RawTable,
    delivery_files,
    file_sha256,
    find_deliveries,
    open_table,
)
from pipeline.warehouse import Warehouse

log = logging.getLogger(__name__)

# Extra columns are kept as JSON, except any that could identify a patient: by name, or
# because a value equals one of the delivery's raw patient ids.
IDENTIFYING_NAME = re.compile(
    r"(patient|person|record|subject|mrn|nhs|ssn|social|insurance|passport|name|birth|dob|"
    r"address|street|postcode|post_code|zip|phone|mobile|email|mail|ip_addr|identifier|_id$)",
    re.IGNORECASE,
)


def delivery_id_for(files: dict[str, str]) -> str:
    """A content address: the same files (by hash) always give the same delivery id."""
    digest = hashlib.sha256(json.dumps(sorted(files.items())).encode()).hexdigest()
    return f"d{digest[:15]}"


def ingest(
    wh: Warehouse, landing: Path, pseudonym_key: str, *, as_of: datetime | None = None
) -> list[DeliveryOutcome]:
    """Load every new delivery under ``landing``; a bad delivery fails alone, the rest load.

    ``as_of`` is the instant the row rules judge "not in the future" by (default: now).
    """
    return [
        logged(load_delivery(wh, folder, pseudonym_key, as_of=as_of))
        for folder in find_deliveries(landing)
    ]


def load_delivery(
    wh: Warehouse, folder: Path, pseudonym_key: str, *, as_of: datetime | None = None
) -> DeliveryOutcome:
    """One landing folder: hash its files (cheap skip), read, pseudonymise, check, load."""
    started = now()
    try:
        paths = delivery_files(folder)
        hashes = {table: file_sha256(path) for table, path in paths.items()}
    except DeliveryError as exc:
        failed_id = f"f{sha_text(str(folder))[:15]}"
        return record_failure(wh, "landing", str(folder), failed_id, "", exc, started)
    # The format is part of the content: the same bytes as .csv and as .parquet are
    # different deliveries (one of them fails). CSV ids keep their historical form.
    delivery_id = delivery_id_for(
        {t: h if paths[t].suffix == ".csv" else f"{paths[t].suffix}:{h}" for t, h in hashes.items()}
    )
    sha256 = sha_text(json.dumps(sorted(hashes.items())))
    if is_done(wh, delivery_id):
        return DeliveryOutcome(delivery_id, str(folder), "skipped", 0)
    try:
        raws = {table: open_table(table, path, hashes[table]) for table, path in paths.items()}
    except DeliveryError as exc:
        return record_failure(wh, "landing", str(folder), delivery_id, sha256, exc, started)
    return load_tables(
        wh, "landing", str(folder), delivery_id, sha256, raws, pseudonym_key, started, as_of
    )


def load_source(
    wh: Warehouse,
    source: str,
    location: str,
    read: Callable[[], dict[str, RawTable]],
    pseudonym_key: str,
    files_sha256: str | None = None,
) -> DeliveryOutcome:
    """Load one delivery of a non-landing source (``omop``, ``fhir``, ``redcap``).

    ``files_sha256`` (a hash of the source files) allows skipping before reading; without
    it (OMOP, read from a database) the hash is taken over a deterministic CSV dump of the
    extracted rows.
    """
    started = now()
    if files_sha256 and is_done(wh, f"{source}-{files_sha256[:15]}"):
        return logged(DeliveryOutcome(f"{source}-{files_sha256[:15]}", location, "skipped", 0))
    try:
        raws = read()
    except DeliveryError as exc:
        failed_id = f"{source}-f{sha_text(location)[:14]}"
        return logged(record_failure(wh, source, location, failed_id, "", exc, started))
    sha256 = files_sha256 or tables_sha256(raws)
    delivery_id = f"{source}-{sha256[:15]}"
    if is_done(wh, delivery_id):
        return logged(DeliveryOutcome(delivery_id, location, "skipped", 0))
    return logged(
        load_tables(wh, source, location, delivery_id, sha256, raws, pseudonym_key, started)
    )


def load_tables(
    wh: Warehouse,
    source: str,
    location: str,
    delivery_id: str,
    sha256: str,
    raws: dict[str, RawTable | CsvStream],
    pseudonym_key: str,
    started: datetime,
    as_of: datetime | None = None,
) -> DeliveryOutcome:
    """Pseudonymise, check and bulk-load one delivery's tables in a single transaction.

    Each table streams from its reader through ``to_staging`` into COPY (the warehouse
    reads and encodes the next batches while it sends the current one), so the row
    counts for the manifest are known only once the rows are in. On the way the GX
    suites check the rows (``pipeline.row_checks``, in a worker thread); the failing
    rows go to ``staging.row_failures`` and each rule's counts to the manifest's
    ``files``, in the same transaction as the rows, for validation. The largest table
    loads first: its batches key the delivery's patients a few thousand at a time while
    the server is busy with earlier batches, and the smaller tables that follow find
    every pseudonym cached (loaded first, the patients table would key all of them
    before its first row could be sent).
    """
    use_jemalloc()
    manifest = wh.table("staging", "deliveries")
    failures, refs = wh.table("staging", "row_failures"), wh.table("staging", "patient_refs")
    with wh.begin() as conn:
        write_entry(conn, wh, delivery_id, source, location, sha256, started, status="loading")
    checks = DeliveryChecks(now=as_of or datetime.now(UTC))
    try:
        keyed = Pseudonymiser(pseudonym_key)  # each patient hashed once per delivery
        files = {}
        with wh.begin() as conn:
            for found in (failures, refs):
                conn.execute(delete(found).where(found.c.delivery_id == delivery_id))
            for table, raw in _largest_first(raws):
                staging = wh.table("staging", table)
                conn.execute(delete(staging).where(staging.c.delivery_id == delivery_id))
                streamed = to_staging(raw, delivery_id, keyed, checks.table(table))
                count = wh.insert_frame(conn, staging, streamed)
                files[table] = {"file": raw.path.name, "sha256": raw.sha256, "rows": count}
            for table, verdict in checks.results().items():
                summary = verdict.summary.astype(object)
                files[table]["rules"] = summary.where(summary.notna(), None).to_dict("records")
                found = verdict.failures.rename(columns={"column": "column_name"})
                wh.insert_frame(
                    conn, failures, found.assign(delivery_id=delivery_id, source_table=table)
                )
            for table, keys in checks.patient_refs().items():
                wh.insert_frame(conn, refs, _patient_refs(delivery_id, table, keys))
            rows = sum(f["rows"] for f in files.values())
            conn.execute(
                update(manifest)
                .where(manifest.c.delivery_id == delivery_id)
                .values(
                    files=json.dumps(files, sort_keys=True),
                    rows=rows,
                    status="loaded",
                    finished_at=now(),
                )
            )
    except Exception as exc:  # a failed delivery must not stop the others
        log.debug("delivery %s failed while loading", delivery_id, exc_info=True)
        return record_failure(wh, source, location, delivery_id, sha256, exc, started)
    finally:
        checks.close()
    return DeliveryOutcome(delivery_id, location, "loaded", rows)


def _patient_refs(delivery_id: str, table: str, keys: pa.Array) -> pa.RecordBatchReader:
    """``staging.patient_refs`` rows as Arrow text, so they go in binary COPY (100 000 a table)."""
    n = len(keys)
    batch = pa.record_batch(
        {
            DELIVERY_ID: pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), [delivery_id]),
            "source_table": pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), [table]),
            PATIENT_KEY: keys,
        }
    )
    return pa.RecordBatchReader.from_batches(batch.schema, [batch])


def _largest_first(raws: dict[str, RawTable | CsvStream]) -> list[tuple[str, RawTable | CsvStream]]:
    def size(raw: RawTable | CsvStream) -> int:
        return raw.data.nbytes if isinstance(raw, RawTable) else raw.path.stat().st_size

    return sorted(raws.items(), key=lambda item: size(item[1]), reverse=True)


def to_staging(
    raw: RawTable | CsvStream,
    delivery_id: str,
    pseudonym_key: str | Pseudonymiser,
    checks: TableChecks | None = None,
) -> pa.RecordBatchReader:
    """The staging rows of one table, batch by batch: pseudonymised, with lineage, and
    handed to ``checks`` (the table's row checks) as they pass.

    Patient ids become keyed pseudonyms here, before anything is written; columns that
    embed a raw id (``raw.hashed``) are keyed too; safe columns beyond the contract are
    folded into ``extra`` as JSON. Lineage per row is the delivery and the row number;
    the file name is in the manifest's ``files`` (one per table), not repeated on
    millions of rows. The delivery id is a one-value dictionary column: the same bytes
    on every row, encoded once per batch.
    """
    keyed = (
        pseudonym_key if isinstance(pseudonym_key, Pseudonymiser) else Pseudonymiser(pseudonym_key)
    )
    extras = safe_extras(raw) if isinstance(raw, RawTable) else []
    required = LANDING_REQUIRED[raw.table]
    names = [DELIVERY_ID, SOURCE_ROW]
    names += [PATIENT_KEY] if "patient_id" in required else []
    names += [c for c in required if c != "patient_id"] + (["extra"] if extras else [])
    types = {DELIVERY_ID: pa.dictionary(pa.int32(), pa.string()), SOURCE_ROW: pa.int64()}
    schema = pa.schema([(name, types.get(name, pa.string())) for name in names])
    delivery = pa.array([delivery_id], pa.string())

    def staged() -> Iterator[pa.RecordBatch]:
        for batch in raw.batches():
            n = batch.num_rows
            columns = {
                DELIVERY_ID: pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), delivery),
                SOURCE_ROW: pc.cast(batch[SOURCE_ROW], pa.int64()),
            }
            for name in required:
                value = pc.cast(batch[name], pa.string())
                if name == "patient_id":
                    columns[PATIENT_KEY] = keyed(value)
                else:
                    columns[name] = keyed(value) if name in raw.hashed else value
            if extras:
                values = [batch[c].to_pylist() for c in extras]
                columns["extra"] = pa.array(
                    [
                        json.dumps(dict(zip(extras, row, strict=True)))
                        for row in zip(*values, strict=True)
                    ],
                    pa.string(),
                )
            batch = pa.RecordBatch.from_arrays([columns[name] for name in names], schema=schema)
            if checks is not None:
                checks.add(batch)
            yield batch
        if checks is not None:
            checks.done()

    return pa.RecordBatchReader.from_batches(schema, staged())


def safe_extras(raw: RawTable) -> list[str]:
    """Extra columns that may be kept: never one that names or holds a patient identifier."""
    required = set(LANDING_REQUIRED[raw.table]) | {SOURCE_ROW}
    extras = [c for c in raw.data.column_names if c not in required]
    if not extras:
        return []
    raw_ids = None
    if "patient_id" in raw.data.column_names:
        raw_ids = pc.unique(pc.utf8_trim_whitespace(raw.data["patient_id"]).drop_null())
    kept, dropped = [], []
    for name in extras:
        column = raw.data[name]
        leaks = IDENTIFYING_NAME.search(name) is not None or name in raw.hashed
        if not leaks and raw_ids is not None and len(raw_ids):
            trimmed = pc.utf8_trim_whitespace(pc.cast(column, pa.string()))
            leaks = bool(pc.any(pc.is_in(trimmed, value_set=raw_ids)).as_py())
        (dropped if leaks else kept).append(name)
    if dropped:
        log.warning(
            "%s: dropped extra column(s) %s: they may identify a patient",
            raw.path.name,
            ", ".join(dropped),
        )
    return kept


def tables_sha256(raws: dict[str, RawTable]) -> str:
    """A content hash of extracted tables: a deterministic CSV dump, table by table."""
    digest = hashlib.sha256()
    for table in sorted(raws):
        buffer = io.BytesIO()
        pacsv.write_csv(raws[table].data, buffer)
        digest.update(table.encode() + b"\0" + buffer.getvalue())
    return digest.hexdigest()
