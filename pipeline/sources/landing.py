"""Landing deliveries: one folder of CSV or Parquet files in the contract of design.md.

Everything is read as text (pyarrow's CSV reader, all columns typed ``string``) so that
a malformed value reaches validation and quarantine with the exact characters the clinic
sent, instead of being silently coerced or crashing the parser.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.schema import LANDING_REQUIRED, OPTIONAL_TABLES, SOURCE_ROW

SUFFIXES = (".csv", ".parquet")


class DeliveryError(Exception):
    """A delivery file cannot be loaded; the message names the file and what to fix."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


@dataclass(frozen=True)
class RawTable:
    """One landing file read as text, with 1-based ``source_row`` numbers."""

    table: str
    path: Path
    sha256: str
    frame: pd.DataFrame


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_delivery(folder: Path) -> bool:
    return any(
        (folder / f"{table}{sfx}").exists() for table in LANDING_REQUIRED for sfx in SUFFIXES
    )


def find_deliveries(landing: Path) -> list[Path]:
    """``landing`` itself when it is a delivery, else its delivery sub-folders in name order."""
    if not landing.is_dir():
        raise DeliveryError(landing, "landing folder does not exist")
    if is_delivery(landing):
        return [landing]
    return sorted(p for p in landing.iterdir() if p.is_dir() and is_delivery(p))


def delivery_files(folder: Path) -> dict[str, Path]:
    """The landing file of each table in ``folder``; a missing required table is an error."""
    found: dict[str, Path] = {}
    for table in LANDING_REQUIRED:
        candidates = [
            folder / f"{table}{sfx}" for sfx in SUFFIXES if (folder / f"{table}{sfx}").exists()
        ]
        if len(candidates) > 1:
            raise DeliveryError(
                folder, f"both {candidates[0].name} and {candidates[1].name}; keep one"
            )
        if candidates:
            found[table] = candidates[0]
        elif table not in OPTIONAL_TABLES:
            raise DeliveryError(
                folder / f"{table}.csv", "required file is missing from the delivery"
            )
    return found


def read_table(table: str, path: Path, sha256: str | None = None) -> RawTable:
    """Read one landing file as text; raise DeliveryError naming the file on any problem."""
    if path.stat().st_size == 0:
        raise DeliveryError(path, "file is empty (0 bytes)")
    try:
        arrow = _read_parquet(path) if path.suffix == ".parquet" else _read_csv(path)
    except DeliveryError:
        raise
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, UnicodeDecodeError) as exc:
        raise DeliveryError(
            path, f"cannot be read as {path.suffix[1:].upper()}: {_first_line(exc)}"
        ) from exc
    frame = arrow.to_pandas(types_mapper=None)
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in LANDING_REQUIRED[table] if c not in frame.columns]
    if missing:
        raise DeliveryError(
            path,
            f"missing required column(s) {', '.join(missing)}; expected {', '.join(LANDING_REQUIRED[table])}",
        )
    if frame.empty and table not in OPTIONAL_TABLES:
        raise DeliveryError(path, "has a header but no data rows")
    frame = frame.astype(object).where(frame.notna(), None)
    frame.insert(0, SOURCE_ROW, range(1, len(frame) + 1))
    return RawTable(table=table, path=path, sha256=sha256 or file_sha256(path), frame=frame)


def _read_csv(path: Path) -> pa.Table:
    with path.open("rb") as handle:
        head = handle.read(4096)
    if b"\x00" in head or head.startswith(b"PAR1"):
        raise DeliveryError(path, "is not a CSV text file (binary content); check the file type")
    try:
        header = head.decode("utf-8").splitlines()[0]
    except (UnicodeDecodeError, IndexError) as exc:
        raise DeliveryError(path, "is not UTF-8 encoded text; re-export it as UTF-8 CSV") from exc
    names = [n.strip().strip('"') for n in header.split(",")]
    return pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names}, strings_can_be_null=True
        ),
    )


def _read_parquet(path: Path) -> pa.Table:
    with path.open("rb") as handle:
        if handle.read(4) != b"PAR1":
            raise DeliveryError(
                path, "is not a Parquet file (no PAR1 magic bytes); check the file type"
            )
    table = pq.read_table(path)
    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_timestamp(field.type):
            column = pc.strftime(column, format="%Y-%m-%dT%H:%M:%S")
        columns.append(pc.cast(column, pa.string()))
    return pa.table(columns, names=table.column_names)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
