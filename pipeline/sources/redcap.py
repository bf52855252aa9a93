"""REDCap longitudinal CSV export (raw data) -> landing contract, through a mapping file.

A REDCap export has one row per record and event (``record_id``, ``redcap_event_name``)
plus one row per instance of a repeating instrument (``redcap_repeat_instrument``,
``redcap_repeat_instance``). The user's TOML mapping file names, per landing table,
the event or repeating instrument that holds it and the REDCap field of each contract
column; ``[values.<column>]`` translates coded choices ("1" -> "F"). A field missing on
an instrument's row is taken from the record's non-repeating rows (e.g. weight recorded
at baseline). Treatment and assessment ids are built from record, event, instrument
and instance, so they embed ``record_id``: ingest keys them with the same HMAC.
Example mapping: tests/fixtures/redcap/mapping.toml; field mapping: docs/sources.md.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from pipeline.schema import LANDING_REQUIRED, SOURCE_ROW
from pipeline.sources.landing import DeliveryError, RawTable, file_sha256, read_csv_text

RECORD, EVENT = "record_id", "redcap_event_name"
INSTRUMENT, INSTANCE = "redcap_repeat_instrument", "redcap_repeat_instance"
ID_COLUMN = {"treatments": "treatment_id", "pain_assessments": "assessment_id"}


def redcap_sha256(export: Path, mapping: Path) -> str:
    """The export and its mapping together: a corrected mapping is a new delivery too."""
    return hashlib.sha256((file_sha256(export) + file_sha256(mapping)).encode()).hexdigest()


def load_mapping(path: Path) -> dict[str, Any]:
    try:
        mapping = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DeliveryError(path, f"is not a readable TOML mapping file: {exc}") from exc
    for table in ("patients", "treatments", "pain_assessments"):
        if table not in mapping:
            raise DeliveryError(path, f"has no [{table}] section")
    return mapping


def read_redcap(export: Path, mapping_path: Path) -> dict[str, RawTable]:
    """The landing tables described by ``mapping_path`` from one REDCap CSV export."""
    mapping = load_mapping(mapping_path)
    frame = read_csv_text(export).to_pandas()
    frame = frame.astype(object).where(frame.notna(), None)
    for col in (RECORD, EVENT):
        if col not in frame.columns:
            raise DeliveryError(export, f"missing REDCap column {col}; export raw data with events")
    for col in (INSTRUMENT, INSTANCE):
        if col not in frame.columns:
            frame[col] = None
    frame[SOURCE_ROW] = range(1, len(frame) + 1)
    base = frame.loc[frame[INSTRUMENT].isna()]
    values = mapping.get("values", {})
    out = {}
    for table in ("patients", "treatments", "pain_assessments", "adverse_events"):
        if table in mapping:
            out[table] = _table(table, mapping[table], frame, base, values, export, mapping_path)
    return out


def _table(
    table: str,
    spec: dict[str, Any],
    frame: pd.DataFrame,
    base: pd.DataFrame,
    values: dict[str, dict[str, str]],
    export: Path,
    mapping_path: Path,
) -> RawTable:
    if "instrument" in spec:
        rows = frame.loc[frame[INSTRUMENT] == spec["instrument"]]
    elif "event" in spec:
        rows = base.loc[base[EVENT] == spec["event"]]
    else:
        raise DeliveryError(mapping_path, f"[{table}] needs an 'event' or an 'instrument'")
    out = pd.DataFrame({SOURCE_ROW: rows[SOURCE_ROW], "patient_id": rows[RECORD]})
    for column in LANDING_REQUIRED[table]:
        if column == "patient_id" or (column == ID_COLUMN.get(table) and column not in spec):
            continue
        field = spec.get(column)
        if field is None:
            raise DeliveryError(mapping_path, f"[{table}] does not map the column {column}")
        if field not in frame.columns:
            raise DeliveryError(export, f"has no field {field} (mapped to {table}.{column})")
        value = rows[field]
        fallback = base.dropna(subset=[field]).drop_duplicates(RECORD).set_index(RECORD)[field]
        value = value.where(value.notna(), rows[RECORD].map(fallback))
        if column in values:
            coded = {str(k): str(v) for k, v in values[column].items()}
            value = value.map(lambda v, c=coded: c.get(v, v) if v is not None else None)
        if column.endswith("_at"):  # REDCap writes "YYYY-MM-DD HH:MM"; the contract is ISO-8601
            stamps = pd.to_datetime(value, errors="coerce", format="mixed")
            iso = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S")
            value = iso.where(stamps.notna(), value)
        out[column] = value.astype(object).where(value.notna(), None)
    hashed: tuple[str, ...] = ()
    id_col = ID_COLUMN.get(table)
    if id_col and id_col not in spec:
        parts = [rows[RECORD], rows[EVENT], rows[INSTRUMENT], rows[INSTANCE]]
        out[id_col] = [
            "|".join("" if p is None else str(p) for p in t) for t in zip(*parts, strict=True)
        ]
        hashed = (id_col,)
    out = out[[SOURCE_ROW, *LANDING_REQUIRED[table]]].sort_values(SOURCE_ROW)
    raw = RawTable.from_frame(table, export, out.drop(columns=SOURCE_ROW), hashed=hashed)
    # keep the export's own row numbers, so quarantine points at the right CSV line
    data = raw.data.set_column(0, SOURCE_ROW, pa.array(out[SOURCE_ROW].to_numpy(), pa.int64()))
    return RawTable(table, export, "", data, hashed)
