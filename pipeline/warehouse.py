"""The warehouse handle every stage receives: engine, tables, and fast bulk writes.

Bulk loads take the fastest path each engine offers (design.md): PostgreSQL
``COPY ... FROM STDIN`` through psycopg 3, SQLite ``executemany`` inside one
transaction. Nothing here inserts row by row through the ORM.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Table, create_engine, delete, event, select, text
from sqlalchemy.engine import make_url

from pipeline.tables import LAYERS, build_metadata


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

    def create_schema(self) -> None:
        """Create missing schemas and tables; safe to call at the start of every run."""
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                for layer in LAYERS:
                    conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{layer}"'))
            self.metadata.create_all(conn, checkfirst=True)

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

    def insert_frame(self, conn: Connection, table: Table, frame: pd.DataFrame) -> int:
        """Bulk-insert ``frame`` (columns ⊆ table columns) inside the caller's transaction."""
        if frame.empty:
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
    """Plain Python values for the DB-API: NaN/NaT become NULL, numpy scalars Python ones."""
    out = frame.astype(object).where(frame.notna(), None)
    records = out.to_dict("records")
    for rec in records:
        for key, value in rec.items():
            if isinstance(value, np.generic):
                rec[key] = value.item()
            elif isinstance(value, pd.Timestamp):
                rec[key] = value.to_pydatetime()
            elif isinstance(value, float) and math.isnan(value):
                rec[key] = None
    return records


def _copy_into(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    """PostgreSQL COPY FROM STDIN in CSV form, inside the SQLAlchemy transaction."""
    raw = conn.connection.driver_connection
    assert raw is not None
    cols = ", ".join(f'"{c}"' for c in frame.columns)
    target = f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, date_format="%Y-%m-%d %H:%M:%S.%f")
    with (
        raw.cursor() as cur,
        cur.copy(f"COPY {target} ({cols}) FROM STDIN WITH (FORMAT csv)") as copy,
    ):
        copy.write(buffer.getvalue())


def chunks(values: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    """Slices of ``values`` small enough for an SQL ``IN (...)`` list."""
    for start in range(0, len(values), size):
        yield values[start : start + size]
