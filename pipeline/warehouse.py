"""The warehouse handle every stage receives: engine, tables, and fast bulk writes.

Bulk loads take the fastest path each engine offers (design.md): PostgreSQL
``COPY ... FROM STDIN`` through psycopg 3, SQLite ``executemany`` inside one
transaction. Nothing here inserts row by row through the ORM.
"""

from __future__ import annotations

import io
import math
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
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
        self, layer: str, name: str, where: Any = None, conn: Connection | None = None
    ) -> pd.DataFrame:
        """A whole table (optionally filtered) as a DataFrame."""
        table = self.table(layer, name)
        query = select(table) if where is None else select(table).where(where)
        if conn is not None:
            return pd.read_sql(query, conn)
        with self.engine.connect() as own:
            return pd.read_sql(query, own)

    def read_text_columns(
        self, layer: str, name: str, columns: list[str], delivery_id: str
    ) -> pd.DataFrame:
        """Some columns of one delivery's rows: integer ``source_row``, the rest Arrow text.

        The bulk read for validation (millions of staging rows): PostgreSQL streams
        ``COPY (SELECT ...) TO STDOUT`` into Arrow's CSV reader, SQLite fetches plain
        tuples; neither builds a SQLAlchemy row object per row. Text columns stay
        Arrow-backed (``pd.ArrowDtype(pa.string())``, missing = NA): no Python string
        object per value, and the GX rules read the Arrow buffers directly.
        """
        table = self.table(layer, name)
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            if self.dialect == "postgresql":
                arrow = _copy_out(raw, table, columns, delivery_id)
            else:
                quoted = ", ".join(f'"{c}"' for c in columns)
                cursor = raw.execute(
                    f'SELECT {quoted} FROM "{table.name}" WHERE delivery_id = ?', (delivery_id,)
                )
                rows = list(zip(*cursor.fetchall(), strict=True)) or [()] * len(columns)
                arrow = pa.table(
                    {
                        c: pa.array(values, type=pa.int64() if c == "source_row" else pa.string())
                        for c, values in zip(columns, rows, strict=True)
                    }
                )
        return arrow.to_pandas(types_mapper=_arrow_text_types)

    def insert_frame(self, conn: Connection, table: Table, frame: pd.DataFrame | pa.Table) -> int:
        """Bulk-insert ``frame`` (columns ⊆ table columns) inside the caller's transaction.

        ``frame`` may be a pandas frame or an Arrow table (ingest's text columns stay in
        Arrow from the CSV reader to COPY, without a detour through Python objects).
        """
        if len(frame) == 0:
            return 0
        frame = _conform(frame, table)
        if self.dialect == "postgresql":
            _copy_into(conn, table, frame)
        else:
            conn.execute(table.insert(), _records(frame))
        return len(frame)

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
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    return engine


def _conform(frame: pd.DataFrame | pa.Table, table: Table) -> pd.DataFrame | pa.Table:
    """Keep the table's columns and give integer/boolean columns types both drivers accept."""
    if isinstance(frame, pa.Table):
        return frame.select([c for c in frame.column_names if c in table.c])
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


def _records(frame: pd.DataFrame | pa.Table) -> list[dict[str, Any]]:
    """Plain Python values for the DB-API: NaN/NaT become NULL, numpy scalars Python ones.

    Converted column by column (vectorised), then zipped into one dict per row.
    """
    if isinstance(frame, pa.Table):
        names, columns = frame.column_names, [c.to_pylist() for c in frame.columns]
    else:
        names = [str(c) for c in frame.columns]
        columns = [_python_values(frame[name]) for name in frame.columns]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _python_values(series: pd.Series) -> list[Any]:
    missing = series.isna().to_numpy()
    if series.dtype.kind in "iufb" and not missing.any():
        return series.to_numpy().tolist()
    values = series.astype(object).tolist()
    out = []
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


COPY_BATCH_ROWS = 500_000  # bounds the CSV buffer: ~50 MB per batch of staging rows
COPY_AHEAD = 2  # batches formatted ahead of the one being sent


def _csv_bytes(batch: pa.RecordBatch) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(batch, sink, pacsv.WriteOptions(include_header=False))
    return sink.getvalue()


def _copy_into(conn: Connection, table: Table, frame: pd.DataFrame | pa.Table) -> None:
    """PostgreSQL COPY FROM STDIN in CSV form, inside the SQLAlchemy transaction.

    Arrow tables are written by Arrow's C++ CSV writer in batches, so memory stays
    bounded by one batch and no Python object is made per row; unquoted empty fields
    are NULL, quoted ones empty strings.
    """
    raw = conn.connection.driver_connection
    assert raw is not None
    names = frame.column_names if isinstance(frame, pa.Table) else list(frame.columns)
    cols = ", ".join(f'"{c}"' for c in names)
    target = f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'
    with (
        raw.cursor() as cur,
        cur.copy(f"COPY {target} ({cols}) FROM STDIN WITH (FORMAT csv)") as copy,
    ):
        if isinstance(frame, pa.Table):
            # A worker formats the next batches (Arrow releases the GIL) while this thread
            # streams the current one to the server: client and server work overlap.
            pending: deque[Future[pa.Buffer]] = deque()
            with ThreadPoolExecutor(max_workers=1) as pool:
                for batch in frame.to_batches(max_chunksize=COPY_BATCH_ROWS):
                    pending.append(pool.submit(_csv_bytes, batch))
                    if len(pending) > COPY_AHEAD:
                        copy.write(memoryview(pending.popleft().result()))
                while pending:
                    copy.write(memoryview(pending.popleft().result()))
            return
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, header=False, date_format="%Y-%m-%d %H:%M:%S.%f")
        copy.write(buffer.getvalue())


def _copy_out(raw: Any, table: Table, columns: list[str], delivery_id: str) -> pa.Table:
    """``COPY (SELECT columns ... WHERE delivery_id = %s) TO STDOUT`` as an Arrow table."""
    from psycopg import sql

    query = sql.SQL(
        "COPY (SELECT {} FROM {} WHERE delivery_id = {}) TO STDOUT WITH (FORMAT csv, HEADER true)"
    ).format(
        sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        sql.Identifier(table.schema, table.name),
        sql.Literal(delivery_id),
    )
    buffer = io.BytesIO()
    with raw.cursor() as cur, cur.copy(query) as copy:
        for block in copy:
            buffer.write(block)
    buffer.seek(0)
    types = {c: pa.int64() if c == "source_row" else pa.string() for c in columns}
    return pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(block_size=64 << 20),
        convert_options=pacsv.ConvertOptions(
            column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=False
        ),
    )


def _arrow_text_types(arrow_type: pa.DataType) -> pd.ArrowDtype | None:
    """``to_pandas`` mapper: keep Arrow strings as Arrow, numbers as numpy."""
    return pd.ArrowDtype(arrow_type) if pa.types.is_string(arrow_type) else None


def chunks(values: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    """Slices of ``values`` small enough for an SQL ``IN (...)`` list."""
    for start in range(0, len(values), size):
        yield values[start : start + size]
