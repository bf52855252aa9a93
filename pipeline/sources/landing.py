"""Landing deliveries: one folder of CSV or Parquet files in the contract of design.md.

Everything is read as text (pyarrow's CSV reader, all columns typed ``string``) so that
a malformed value reaches validation and quarantine with the exact characters the clinic
sent, instead of being silently coerced or crashing the parser. Frames stay in Arrow
until they reach the warehouse: no per-row Python on the 10-million-row path. A CSV with
only the contract's columns is not even read whole: it is parsed block by block while it
is loaded (``CsvStream``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.schema import LANDING_REQUIRED, OPTIONAL_TABLES, SOURCE_ROW

SUFFIXES = (".csv", ".parquet")
STREAM_BLOCK_BYTES = 2 << 20  # CSV bytes parsed per streamed batch (~50 000 assessments)


class DeliveryError(Exception):
    """A delivery file cannot be loaded; the message names the file and what to fix.

    Messages never quote cell values: a value may be a raw patient identifier.
    """

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


@dataclass(frozen=True)
class RawTable:
    """One source table in the landing contract, as text, with 1-based ``source_row``.

    ``hashed`` names columns besides ``patient_id`` that embed a raw identifier (e.g. a
    REDCap treatment id built from record_id): ingest keys them with the same HMAC.
    """

    table: str
    path: Path
    sha256: str
    data: pa.Table
    hashed: tuple[str, ...] = field(default=())

    @property
    def frame(self) -> pd.DataFrame:
        """The same rows as a pandas frame of Python strings (None for missing)."""
        frame = self.data.to_pandas()
        return frame.astype(object).where(frame.notna(), None)

    @classmethod
    def from_frame(
        cls,
        table: str,
        path: Path,
        frame: pd.DataFrame,
        sha256: str = "",
        hashed: tuple[str, ...] = (),
    ) -> RawTable:
        """Wrap a source reader's frame: every contract column as text, rows numbered."""
        columns = {SOURCE_ROW: pa.array(range(1, len(frame) + 1), pa.int64())}
        for name in frame.columns:
            if name == SOURCE_ROW:
                continue
            values = frame[name].astype(object).where(frame[name].notna(), None)
            columns[str(name)] = pa.array(
                [None if v is None or v == "" else str(v) for v in values], pa.string()
            )
        return cls(table, path, sha256, pa.table(columns), hashed)

    def batches(self, max_rows: int = 500_000) -> Iterator[pa.RecordBatch]:
        yield from self.data.to_batches(max_chunksize=max_rows)


@dataclass(frozen=True)
class CsvStream:
    """A landing CSV with only the contract's columns, parsed block by block as it loads.

    Streaming lets COPY start after the first block instead of after the whole file,
    overlaps parsing (Arrow's threads) with the server's work, and bounds memory by a
    few blocks. Files with extra columns are read whole into a ``RawTable`` instead:
    whether an extra column may be kept depends on every patient id of the file
    (``ingest.safe_extras``). Problems found while streaming (a ragged row, bad UTF-8)
    raise the same ``DeliveryError`` as a whole read, inside the load's transaction.
    """

    table: str
    path: Path
    sha256: str
    hashed: tuple[str, ...] = field(default=())

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Text batches with the 1-based ``source_row`` first, in file order."""
        rows = 0
        try:
            _, convert = _csv_options(self.path)
            reader = pacsv.open_csv(
                self.path,
                read_options=pacsv.ReadOptions(block_size=STREAM_BLOCK_BYTES),
                convert_options=convert,
            )
            columns = [SOURCE_ROW, *(str(c).strip() for c in reader.schema.names)]
            _check_required(self.table, self.path, columns)
            for batch in reader:
                if batch.num_rows:
                    numbers = pa.array(np.arange(rows + 1, rows + batch.num_rows + 1))
                    rows += batch.num_rows
                    yield pa.RecordBatch.from_arrays([numbers, *batch.columns], names=columns)
        except DeliveryError:
            raise
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, UnicodeDecodeError) as exc:
            raise DeliveryError(self.path, _arrow_problem(self.path, exc)) from exc
        if rows == 0 and self.table not in OPTIONAL_TABLES:
            raise DeliveryError(self.path, "has a header but no data rows")


def file_sha256(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as exc:
        raise DeliveryError(path, f"cannot be opened: {exc.strerror or exc}") from exc


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


def open_table(table: str, path: Path, sha256: str | None = None) -> RawTable | CsvStream:
    """A landing file ready to load: streamed when it is a CSV of contract columns only.

    The checks that need no data rows (file type, encoding of the header, required
    columns, no data at all) run here, before anything is loaded.
    """
    _check_file(path)
    if path.suffix == ".csv":
        try:
            names, _ = _csv_options(path)
        except DeliveryError:
            raise
        except (OSError, UnicodeDecodeError) as exc:
            raise DeliveryError(path, _arrow_problem(path, exc)) from exc
        stripped = [n.strip() for n in names]
        if sorted(stripped) == sorted(LANDING_REQUIRED[table]):
            if _header_only(path) and table not in OPTIONAL_TABLES:
                raise DeliveryError(path, "has a header but no data rows")
            return CsvStream(table, path, sha256 or file_sha256(path))
    return read_table(table, path, sha256)


def read_table(table: str, path: Path, sha256: str | None = None) -> RawTable:
    """Read one landing file as text; raise DeliveryError naming the file on any problem."""
    _check_file(path)
    try:
        arrow = _read_parquet(path) if path.suffix == ".parquet" else _read_csv(path)
    except DeliveryError:
        raise
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, UnicodeDecodeError) as exc:
        raise DeliveryError(path, _arrow_problem(path, exc)) from exc
    arrow = arrow.rename_columns([str(c).strip() for c in arrow.column_names])
    _check_required(table, path, arrow.column_names)
    if arrow.num_rows == 0 and table not in OPTIONAL_TABLES:
        raise DeliveryError(path, "has a header but no data rows")
    arrow = arrow.add_column(0, SOURCE_ROW, pa.array(range(1, arrow.num_rows + 1), pa.int64()))
    return RawTable(table=table, path=path, sha256=sha256 or file_sha256(path), data=arrow)


def read_csv_text(path: Path) -> pa.Table:
    """Any CSV as an all-text Arrow table, with the same checks and messages as landing files."""
    try:
        if path.stat().st_size == 0:
            raise DeliveryError(path, "file is empty (0 bytes)")
        return _read_csv(path)
    except DeliveryError:
        raise
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, UnicodeDecodeError) as exc:
        raise DeliveryError(path, _arrow_problem(path, exc)) from exc


def _check_file(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DeliveryError(path, f"cannot be opened: {exc.strerror or exc}") from exc
    if path.is_dir():
        raise DeliveryError(path, "is a directory, not a file")
    if size == 0:
        raise DeliveryError(path, "file is empty (0 bytes)")


def _check_required(table: str, path: Path, columns: list[str]) -> None:
    missing = [c for c in LANDING_REQUIRED[table] if c not in columns]
    if missing:
        raise DeliveryError(
            path,
            f"missing required column(s) {', '.join(missing)}; expected {', '.join(LANDING_REQUIRED[table])}",
        )


def _csv_options(path: Path) -> tuple[list[str], pacsv.ConvertOptions]:
    """The header's column names and reader options that keep every column text."""
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
    if b"\x00" in head or head.startswith(b"PAR1"):
        raise DeliveryError(path, "is not a CSV text file (binary content); check the file type")
    try:
        header = head.split(b"\n", 1)[0].decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise DeliveryError(path, "is not UTF-8 encoded text; re-export it as UTF-8 CSV") from exc
    names = [n.strip().strip('"') for n in header.split(",")]
    return names, pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names}, strings_can_be_null=True
    )


def _header_only(path: Path) -> bool:
    """True when nothing but blank lines follows the header (Arrow skips blank lines)."""
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
        if handle.read(1):
            return False
    parts = head.split(b"\n", 1)
    return len(parts) == 1 or not parts[1].strip()


def _read_csv(path: Path) -> pa.Table:
    _, convert = _csv_options(path)
    return pacsv.read_csv(path, convert_options=convert)


def _read_parquet(path: Path) -> pa.Table:
    with path.open("rb") as handle:
        if handle.read(4) != b"PAR1":
            raise DeliveryError(
                path, "is not a Parquet file (no PAR1 magic bytes); check the file type"
            )
    table = pq.read_table(path)
    columns = []
    for fld, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_timestamp(fld.type):
            column = pc.strftime(column, format="%Y-%m-%dT%H:%M:%S")
        column = pc.cast(column, pa.string())
        # as in CSV (strings_can_be_null), an empty string is a missing value
        columns.append(pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column))
    return pa.table(columns, names=table.column_names)


# pyarrow quotes the offending row after "got N"; that row may hold a patient id.
_ROW_TEXT = re.compile(r"(got \d+)\s*:.*", re.DOTALL)


def _arrow_problem(path: Path, exc: BaseException) -> str:
    """What is wrong, in words a data manager can act on, without quoting any cell."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "UTF8" in text or "UTF-8" in text or isinstance(exc, UnicodeDecodeError):
        return "is not UTF-8 encoded text (e.g. Latin-1); re-export it as UTF-8"
    if isinstance(exc, OSError) and not isinstance(exc, pa.ArrowException):
        return f"cannot be opened: {exc.strerror or type(exc).__name__}"
    text = _ROW_TEXT.sub(r"\1", text)
    return f"cannot be read as {path.suffix[1:].upper()}: {text}"
