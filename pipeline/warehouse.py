"""The warehouse handle every stage receives: engine, tables, and fast bulk writes.

Bulk loads take the fastest path each engine offers (design.md): PostgreSQL
``COPY ... FROM STDIN`` through psycopg 3 (``pipeline.bulk_copy``), SQLite
``executemany`` inside one transaction. Nothing here inserts row by row through the ORM.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    create_engine,
    delete,
    event,
    inspect,
    select,
)
from sqlalchemy.engine import make_url

from pipeline.bulk_copy import copy_into as _copy_into
from pipeline.tables import build_metadata


class Warehouse:
    """A SQL warehouse (SQLite file or PostgreSQL) with relief's tables."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = _make_engine(url)
        self.dialect = self.engine.dialect.name
        self.metadata = build_metadata(self.dialect)

    def __repr__(self) -> str:
        return f"Warehouse({make_url(self.url).render_as_string(hide_password=True)})"

    def table(self, layer: str, name: str) -> Table:
        """The table ``layer.name`` (``layer__name`` on SQLite)."""
        key = f"{layer}__{name}" if self.dialect == "sqlite" else f"{layer}.{name}"
        return self.metadata.tables[key]

    def has_table(self, layer: str, name: str) -> bool:
        table = self.table(layer, name)
        return inspect(self.engine).has_table(table.name, schema=table.schema)

    def create_schema(self) -> None:
        """Apply the Alembic migrations (``relief db upgrade``); a no-op at head, so every run calls it."""
        from pipeline.migrate import upgrade

        upgrade(self.engine)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction: everything inside commits together or not at all."""
        with self.engine.begin() as conn:
            yield conn

    def read(
        self,
        layer: str,
        name: str,
        where: Any = None,
        conn: Connection | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """A whole table (optionally filtered, optionally only some ``columns``) as a DataFrame."""
        table = self.table(layer, name)
        query = select(*(table.c[c] for c in columns)) if columns else select(table)
        if where is not None:
            query = query.where(where)
        if conn is not None:
            return pd.read_sql(query, conn)
        with self.engine.connect() as own:
            return pd.read_sql(query, own)

    def insert_frame(
        self,
        conn: Connection,
        table: Table,
        frame: pd.DataFrame | pa.Table | pa.RecordBatchReader,
    ) -> int:
        """Bulk-insert ``frame`` (columns ⊆ table columns) inside the caller's transaction.

        ``frame`` may be a pandas frame, an Arrow table or a stream of Arrow record
        batches: ingest streams each landing file from the CSV reader to COPY batch by
        batch, so the file is never whole in memory and parsing overlaps loading (and
        text stays in Arrow, without a detour through Python objects). Returns the number
        of rows written.
        """
        if isinstance(frame, pd.DataFrame):
            if len(frame) == 0:
                return 0
            frame = _conform(frame, table)
            if self.dialect == "postgresql":
                _copy_into(conn, table, frame)
            else:
                conn.execute(table.insert(), _records(frame))
            return len(frame)
        stream = _CountedStream(frame, table)
        if self.dialect == "postgresql":
            _copy_into(conn, table, stream.reader)
        else:
            _executemany(conn, table, stream.reader)
        return stream.rows

    def replace_run_rows(
        self, conn: Connection, layer: str, name: str, run_id: str, frame: pd.DataFrame
    ) -> int:
        """Make ``frame`` the rows of ``run_id`` in a result table (re-runs replace, never append)."""
        table = self.table(layer, name)
        conn.execute(delete(table).where(table.c.run_id == run_id))
        return self.insert_frame(conn, table, frame.assign(run_id=run_id))


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # Wait for locks first: switching to WAL needs the file to itself, and without
            # a busy timeout a connection still open elsewhere fails it at once.
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

    return engine


def _conform(frame: pd.DataFrame, table: Table) -> pd.DataFrame:
    """Keep the table's columns and give integer/boolean columns types both drivers accept."""
    frame = frame[[c for c in frame.columns if c in table.c]].copy()
    for name in frame.columns:
        python_type = _python_type(table.c[name])
        if python_type is int and frame[name].dtype.kind == "f":
            frame[name] = frame[name].round().astype("Int64")
        elif python_type is bool and frame[name].dtype != bool:
            frame[name] = frame[name].astype("boolean")
    return frame


def _python_type(column: Any) -> type | None:
    try:
        return column.type.python_type
    except NotImplementedError:
        return None


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Plain Python values for the DB-API: NaN/NaT become NULL, numpy scalars Python ones.

    Converted column by column (vectorised), then zipped into one dict per row.
    """
    names = [str(c) for c in frame.columns]
    columns = [_python_values(frame[name]) for name in frame.columns]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _executemany(conn: Connection, table: Table, reader: pa.RecordBatchReader) -> None:
    """SQLite's bulk path for Arrow streams: one DB-API executemany of plain tuples per batch.

    Straight to the driver: SQLAlchemy's ``execute(insert, rows)`` builds a parameter
    dict per row (over half of a SQLite ingest, by pyinstrument). Safe here because
    Arrow streams are staging rows, whose text and integer values need no type
    processing; pandas frames (typed columns) keep the SQLAlchemy path.
    """
    quote = conn.dialect.identifier_preparer
    names = reader.schema.names
    sql = (
        f"INSERT INTO {quote.format_table(table)} ({', '.join(quote.quote(n) for n in names)}) "
        f"VALUES ({', '.join('?' for _ in names)})"
    )
    for batch in reader:
        if batch.num_rows:
            rows = list(zip(*(_plain(c).to_pylist() for c in batch.columns), strict=True))
            conn.exec_driver_sql(sql, rows)


def _plain(column: pa.Array) -> pa.Array:
    """Dictionary columns decoded first: ``to_pylist`` on a dictionary array builds a
    scalar per value (~2 µs), 30× slower than decoding and converting plain strings."""
    return column.dictionary_decode() if pa.types.is_dictionary(column.type) else column


def _python_values(series: pd.Series) -> list[Any]:
    missing = series.isna().to_numpy()
    if series.dtype.kind in "iufb" and not missing.any():
        return series.to_numpy().tolist()
    values = series.astype(object).tolist()
    out: list[Any] = []
    for value, gone in zip(values, missing, strict=True):
        if gone:
            out.append(None)
        elif isinstance(value, np.generic):
            out.append(value.item())
        elif isinstance(value, pd.Timestamp):
            out.append(value.to_pydatetime())
        elif isinstance(value, float) and math.isnan(value):
            out.append(None)
        else:
            out.append(value)
    return out


COPY_BATCH_ROWS = 500_000  # Arrow tables are sent in batches of this many rows at most


class _CountedStream:
    """An Arrow stream cut to a table's columns, counting the rows that go through."""

    def __init__(self, frame: pa.Table | pa.RecordBatchReader, table: Table) -> None:
        source = (
            frame.to_reader(max_chunksize=COPY_BATCH_ROWS) if isinstance(frame, pa.Table) else frame
        )
        keep = [name for name in source.schema.names if name in table.c]
        schema = pa.schema([source.schema.field(name) for name in keep])
        self.rows = 0
        self.reader = pa.RecordBatchReader.from_batches(schema, self._batches(source, keep))

    def _batches(self, source: pa.RecordBatchReader, keep: list[str]) -> Iterator[pa.RecordBatch]:
        for batch in source:
            self.rows += batch.num_rows
            yield batch.select(keep)


def chunks(values: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    """Slices of ``values`` small enough for an SQL ``IN (...)`` list."""
    for start in range(0, len(values), size):
        yield values[start : start + size]
