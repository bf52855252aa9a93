"""The GX suites, run at ingest on the rows as they stream into staging.

Validation used to read every staged row back out of the warehouse to check it, which
at 10 M rows cost as much as loading them. Ingest already holds each batch of rows in
memory on its way to the COPY, so it checks them there: every few hundred thousand
rows (``CHUNK_ROWS``) become one GX validation of the table's *row* rules, and the
columns the *table-wide* rules (uniqueness) need are kept aside, so that once the table
has streamed those rules run once over all of its rows (``pipeline.gx_runner``). What
GX found goes into staging with the rows, in the same transaction
(``staging.row_failures`` and the manifest's per-rule counts), and the validate stage
starts from there: it never reads a staged row into Python.

One worker thread per delivery runs every GX validation, in order, while the caller's
threads read, pseudonymise and send the next rows; at most ``MAX_WAITING`` chunks wait
for it, so a slow check slows the stream down instead of filling memory. The batches are
staging batches (``pipeline.ingest.to_staging``): pseudonymised, so GX never sees a raw
patient id. Everything here is pandas, Arrow and GX; nothing is written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa

from pipeline import gx_runner
from pipeline.gx_frame import prepare
from pipeline.schema import LANDING_REQUIRED, PATIENT_KEY, SOURCE_ROW

log = logging.getLogger(__name__)
T = TypeVar("T")

CHUNK_ROWS = 500_000  # rows per GX validation of the row rules: GX costs ~0.05 s a call
MAX_WAITING = 2  # chunks queued for the worker before the stream waits for it


class DeliveryChecks:
    """The checks of one delivery's tables, run by one worker thread in order.

    ``table(name)`` gives the checker a table's stream feeds; ``results()`` waits for
    the worker and returns each table's verdict. ``close()`` (also on error) stops it.
    """

    def __init__(self, *, now: datetime | None = None, chunk_rows: int = CHUNK_ROWS) -> None:
        self.now = now
        self.chunk_rows = chunk_rows
        self.busy_seconds = 0.0  # wall seconds the worker spent checking
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="row-checks")
        self._tables: dict[str, TableChecks] = {}

    def table(self, name: str) -> TableChecks:
        checks = self._tables[name] = TableChecks(self, name)
        return checks

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on the worker, after everything submitted before it."""

        def timed() -> T:
            started = time.perf_counter()
            try:
                return fn(*args)
            finally:
                self.busy_seconds += time.perf_counter() - started

        return self._pool.submit(timed)

    def results(self) -> dict[str, gx_runner.TableValidation]:
        """Each table's verdict; raises what a check raised (SchemaError, a GX crash)."""
        out = {name: checks.verdict() for name, checks in self._tables.items()}
        log.info(
            "row checks: %s rows in %.1f s of the check thread",
            sum(c.rows for c in self._tables.values()),
            self.busy_seconds,
        )
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class TableChecks:
    """One table's stream of staging batches, checked in chunks (see the module doc)."""

    def __init__(self, delivery: DeliveryChecks, table: str) -> None:
        self.delivery, self.table = delivery, table
        self.rows = 0
        self._batches: list[pa.RecordBatch] = []
        self._batched_rows = 0
        self._parts: list[Future[gx_runner.RuleResults]] = []
        self._keys: list[pd.DataFrame] = []  # appended by the worker, in chunk order
        self._table_wide: Future[gx_runner.RuleResults] | None = None
        self._key_columns = gx_runner.table_wide_columns(table)
        self._dictionary: set[str] | None = None  # key columns kept as dictionaries

    def add(self, batch: pa.RecordBatch) -> None:
        """One staging batch (called from the thread that reads the table)."""
        self._batches.append(batch)
        self._batched_rows += batch.num_rows
        self.rows += batch.num_rows
        if self._batched_rows >= self.delivery.chunk_rows:
            self._submit_chunk()

    def done(self) -> None:
        """The table has streamed: check what is left, then the table-wide rules."""
        self._submit_chunk()
        if self._parts:
            self._table_wide = self.delivery.submit(self._check_table_wide)

    def verdict(self) -> gx_runner.TableValidation:
        parts = [part.result() for part in self._parts]
        if self._table_wide is not None:
            parts.append(self._table_wide.result())
        return gx_runner.combine(self.table, parts)

    def _submit_chunk(self) -> None:
        if not self._batches:
            return
        chunk = pa.Table.from_batches(self._batches)
        self._batches, self._batched_rows = [], 0
        while sum(not part.done() for part in self._parts) >= MAX_WAITING:
            wait([p for p in self._parts if not p.done()], return_when=FIRST_COMPLETED)
        self._parts.append(self.delivery.submit(self._check_chunk, chunk))

    def _check_chunk(self, chunk: pa.Table) -> gx_runner.RuleResults:
        prepared = prepare(self.table, _frame(self.table, chunk))
        found = gx_runner.check(self.table, prepared, "rows", now=self.delivery.now)
        keys = prepared.loc[:, self._key_columns]
        if self._dictionary is None:
            self._dictionary = _repeating_text(keys)
        self._keys.append(_compact(keys, self._dictionary))
        return found

    def _check_table_wide(self) -> gx_runner.RuleResults:
        keys = _concat(self._keys)
        self._keys = []
        return gx_runner.check(self.table, keys, "table", now=self.delivery.now)


def _frame(table: str, chunk: pa.Table) -> pd.DataFrame:
    """A staging chunk as the frame GX checks: source_row and the landing columns, the
    pseudonym standing in for the raw patient id (the suites speak the landing contract)."""
    out = {SOURCE_ROW: chunk[SOURCE_ROW].to_numpy()}
    for column in LANDING_REQUIRED[table]:
        source = PATIENT_KEY if column == "patient_id" else column
        out[column] = pd.arrays.ArrowExtensionArray(chunk[source])
    return pd.DataFrame(out)


def _repeating_text(keys: pd.DataFrame) -> set[str]:
    """Text key columns whose values repeat (at least two rows a value on average).

    A pseudonym is 64 characters on each of 10 M rows (640 MB); as a dictionary it is one
    int32 per row plus the distinct patients. Mostly distinct columns (ids) stay text.
    """
    out = set()
    for name, column in keys.items():
        if _is_text(column) and column.nunique() * 2 <= len(column):
            out.add(name)
    return out


def _is_text(column: pd.Series) -> bool:
    return isinstance(column.dtype, pd.ArrowDtype) and pa.types.is_string(
        column.dtype.pyarrow_dtype
    )


def _compact(keys: pd.DataFrame, dictionary: set[str]) -> pd.DataFrame:
    """The key columns of one chunk, the repeating text columns as Arrow dictionaries."""
    out = {}
    for name, column in keys.items():
        if name in dictionary:
            text = column.array._pa_array  # noqa: SLF001 - zero-copy
            column = pd.Series(pd.arrays.ArrowExtensionArray(text.dictionary_encode()))
        out[name] = column.reset_index(drop=True)
    return pd.DataFrame(out)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The chunks' key columns as one frame: text stays Arrow (no copy of the values);
    dictionary columns share one dictionary and become pandas categoricals, whose codes
    the uniqueness metrics sort (``pipeline.gx_expectations``)."""
    out: dict[str, pd.Series] = {}
    for name in frames[0].columns:
        parts = [f[name] for f in frames]
        if all(isinstance(p.dtype, pd.ArrowDtype) for p in parts):
            chunks = [c for p in parts for c in p.array._pa_array.chunks]  # noqa: SLF001
            values = pa.chunked_array(chunks)
            if pa.types.is_dictionary(values.type):
                out[name] = pd.Series(values.unify_dictionaries().to_pandas())
            else:
                out[name] = pd.Series(pd.arrays.ArrowExtensionArray(values))
        else:
            out[name] = pd.concat(parts, ignore_index=True)
    return pd.DataFrame(out)
