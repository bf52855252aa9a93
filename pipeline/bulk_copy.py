"""PostgreSQL ``COPY ... FROM STDIN`` of pandas frames and Arrow streams (psycopg 3).

Arrow streams of text and integer columns (all of staging) go in COPY's binary format,
encoded by ``pipeline.copy_binary``; a worker thread reads and encodes the next batches
while the caller's thread sends the current one. Everything else goes as CSV.
``Warehouse.insert_frame`` is the entry point; this module is its PostgreSQL half.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import closing
from queue import Full, Queue
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import BigInteger, Connection, Integer, SmallInteger, String, Table

from pipeline import copy_binary

T = TypeVar("T")

COPY_AHEAD = 6  # batches read and encoded ahead of the one being sent


def _binary_kinds(table: Table, schema: pa.Schema) -> list[str] | None:
    """The binary COPY kind of each column, or None when one is not sent in binary form.

    Text and integer columns (all of staging) go in binary; any other type (timestamps,
    floats, booleans) falls back to CSV, which the server parses.
    """
    kinds = []
    for arrow_field in schema:
        sql_type = table.c[arrow_field.name].type
        arrow_type = arrow_field.type
        if pa.types.is_dictionary(arrow_type):
            arrow_type = arrow_type.value_type
        if isinstance(sql_type, String) and (
            pa.types.is_string(arrow_type)
            or pa.types.is_large_string(arrow_type)
            or pa.types.is_binary(arrow_type)
            or pa.types.is_large_binary(arrow_type)
        ):
            kinds.append(copy_binary.TEXT)
        elif isinstance(sql_type, Integer) and pa.types.is_integer(arrow_type):
            kinds.append(
                "int2"
                if isinstance(sql_type, SmallInteger)
                else "int8"
                if isinstance(sql_type, BigInteger)
                else "int4"
            )
        else:
            return None
    return kinds


def _csv_bytes(batch: pa.RecordBatch) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(batch, sink, pacsv.WriteOptions(include_header=False))
    return sink.getvalue()


def copy_into(conn: Connection, table: Table, frame: pd.DataFrame | pa.RecordBatchReader) -> None:
    """PostgreSQL ``COPY FROM STDIN`` inside the SQLAlchemy transaction.

    Arrow streams of text and integer columns go in PostgreSQL's binary format
    (``pipeline.copy_binary``): the server reads lengths and bytes instead of parsing
    CSV. A worker thread reads, pseudonymises and encodes the next batches while this
    thread sends the current one (Arrow and numpy release the GIL), so client and server
    work overlap and memory stays bounded by a few batches. Other Arrow columns go as
    CSV written by Arrow's C++ writer; pandas frames (small result tables) as CSV too.
    In CSV, unquoted empty fields are NULL and quoted ones empty strings.
    """
    raw = conn.connection.driver_connection
    assert raw is not None
    names = list(frame.columns) if isinstance(frame, pd.DataFrame) else frame.schema.names
    cols = ", ".join(f'"{c}"' for c in names)
    target = f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'
    if isinstance(frame, pd.DataFrame):
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, header=False, date_format="%Y-%m-%d %H:%M:%S.%f")
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY {target} ({cols}) FROM STDIN (FORMAT csv)") as copy,
        ):
            copy.write(buffer.getvalue())
        return
    kinds = _binary_kinds(table, frame.schema)
    if kinds is None:
        fmt, blocks = "csv", (_csv_bytes(batch) for batch in frame)
    else:
        fmt, blocks = "binary", copy_binary.stream(iter(frame), kinds)
    failed: list[Exception] = []
    try:
        with (
            closing(read_ahead(blocks, COPY_AHEAD)) as ahead,
            raw.cursor() as cur,
            cur.copy(f"COPY {target} ({cols}) FROM STDIN (FORMAT {fmt})") as copy,
        ):
            for block in _noted(ahead, failed):
                copy.write(block)
    except _RowsNotReady:
        raise failed[0] from None


class _RowsNotReady(Exception):
    """Aborts a COPY whose rows could not be read or encoded.

    psycopg sends the text of the exception that leaves a COPY block to the server, which
    logs it; the real error (it may come from a reader of patient data) stays in Python
    and is raised again once the COPY is aborted.
    """

    def __str__(self) -> str:
        return "the client could not prepare the rows; see its own error"


def _noted(items: Iterator[T], failed: list[Exception]) -> Iterator[T]:
    """``items``, turning an exception into ``_RowsNotReady`` and keeping it in ``failed``."""
    try:
        yield from items
    except Exception as exc:
        failed.append(exc)
        raise _RowsNotReady from None


def read_ahead(items: Iterator[T], depth: int) -> Iterator[T]:
    """``items``, produced by a worker thread up to ``depth`` items ahead of the consumer.

    An exception in the worker is raised here, in the consumer; closing this iterator
    early stops the worker.
    """
    queue: Queue[tuple[bool, Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                queue.put(entry, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((False, item)):
                    return
        except BaseException as exc:  # handed to the consumer
            put((True, exc))
            return
        put((True, None))

    worker = threading.Thread(target=produce, name="read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            done, item = queue.get()
            if done:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        worker.join()
