"""The GX suites, run at ingest on the rows as they stream into staging.

Validation used to read every staged row back out of the warehouse to check it, which
at 10 M rows cost as much as loading them. Ingest already holds each batch of rows in
memory on its way to the COPY, so it checks them there: every two million rows
(``CHUNK_ROWS``) become one GX validation of the table's *row* rules, and the
columns the *table-wide* rules (uniqueness) need are kept aside, so that once the table
has streamed those rules run once over all of its rows (``pipeline.gx_runner``). What
GX found goes into staging with the rows, in the same transaction
(``staging.row_failures`` and the manifest's per-rule counts), and the validate stage
starts from there: it never reads a staged row into Python.

While a table streams, one thread checks its chunks, in order, beside the caller's
threads that read, pseudonymise and send the next rows (the second core is the
database's COPY); at most ``MAX_WAITING`` chunks wait for it, so a slow check slows the
stream down instead of filling memory. Once the table has streamed, two more threads
take what is left: the chunks not yet checked, then each table-wide rule on its own. The batches are
staging batches (``pipeline.ingest.to_staging``): pseudonymised, so GX never sees a raw
patient id. Everything here is pandas, Arrow and GX; nothing is written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import gx_runner
from pipeline.gx_frame import prepare
from pipeline.schema import LANDING_REQUIRED, PATIENT_KEY, SOURCE_ROW

log = logging.getLogger(__name__)
T = TypeVar("T")

CHUNK_ROWS = 2_000_000  # rows per GX validation of the row rules: GX costs ~0.1 s a call
MAX_WAITING = 2  # chunks queued or being checked before the stream waits for them


@lru_cache(maxsize=2)
def _pool(kind: str) -> ThreadPoolExecutor:
    """The process's check threads, shared by its deliveries: one for the row rules
    (while the stream goes on, the other core is the database's), two for the
    table-wide rules, which run once a table has streamed and each take a rule. Each
    thread keeps the GX context it opened (``gx_context.batch_definition``), so the
    threads live as long as the process."""
    return ThreadPoolExecutor(1 if kind == "rows" else 2, thread_name_prefix=f"checks-{kind}")


class DeliveryChecks:
    """The checks of one delivery's tables, on the process's check threads (``_pool``).

    ``table(name)`` gives the checker a table's stream feeds; ``results()`` waits for
    the worker and returns each table's verdict. ``close()`` (also on error) stops it.
    """

    def __init__(self, *, now: datetime | None = None, chunk_rows: int = CHUNK_ROWS) -> None:
        self.now = now
        self.chunk_rows = chunk_rows
        self.busy_seconds = 0.0  # wall seconds the workers spent checking, added up
        self._tables: dict[str, TableChecks] = {}
        self._submitted: list[Future[Any]] = []

    def table(self, name: str) -> TableChecks:
        checks = self._tables[name] = TableChecks(self, name)
        return checks

    def submit(self, kind: str, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on a ``kind`` ("rows" or "table") worker, in submission order."""

        def timed() -> T:
            started = time.perf_counter()
            try:
                return fn(*args)
            finally:
                self.busy_seconds += time.perf_counter() - started

        future = _pool(kind).submit(timed)
        self._submitted.append(future)
        return future

    def results(self) -> dict[str, gx_runner.TableValidation]:
        """Each table's verdict; raises what a check raised (SchemaError, a GX crash)."""
        out = {name: checks.verdict() for name, checks in self._tables.items()}
        log.info(
            "row checks: %s rows in %.1f s of the check thread",
            sum(c.rows for c in self._tables.values()),
            self.busy_seconds,
        )
        return out

    def patient_refs(self) -> dict[str, pa.Array]:
        """Per table (not ``patients``), the distinct patient keys its rows refer to: the
        cross-table rule "known patient" checks these, not every row (``cross_checks``)."""
        return {
            name: checks.patients() for name, checks in self._tables.items() if name != "patients"
        }

    def close(self) -> None:
        """Cancel what has not started and wait for what has (the pool lives on)."""
        for future in self._submitted:
            future.cancel()
        wait(self._submitted)


class TableChecks:
    """One table's stream of staging batches, checked in chunks (see the module doc)."""

    def __init__(self, delivery: DeliveryChecks, table: str) -> None:
        self.delivery, self.table = delivery, table
        self.rows = 0
        self._batches: list[pa.RecordBatch] = []
        self._batched_rows = 0
        self._parts: list[Future[gx_runner.RuleResults]] = []
        self._keys: list[Future[_Keys]] = []  # each chunk's, set as soon as it is prepared
        self._waiting: dict[int, tuple[pa.Table, Future[_Keys]]] = {}  # not started yet
        self._table_wide: list[Future[gx_runner.RuleResults]] = []
        keys = gx_runner.table_wide_columns(table)
        self._key_columns = list(keys)
        self._key_only = {name for name, key_only in keys.items() if key_only}
        self._patients: pa.Array = pa.array([], pa.string())

    def add(self, batch: pa.RecordBatch) -> None:
        """One staging batch (called from the thread that reads the table)."""
        self._batches.append(batch)
        self._batched_rows += batch.num_rows
        self.rows += batch.num_rows
        if self._batched_rows >= self.delivery.chunk_rows:
            self._submit_chunk()

    def done(self) -> None:
        """The table has streamed: check what is left, then the table-wide rules.

        The stream is over, so the database no longer needs its core: the last chunk and
        any chunk still waiting for the row-rules thread go to the two table-wide threads.
        """
        self._submit_chunk("table")
        for i, part in enumerate(self._parts):
            waiting = self._waiting.get(id(part))
            if waiting is not None and part.cancel():
                self._parts[i] = self.delivery.submit("table", self._check_chunk, *waiting)
        self._waiting.clear()
        if self._parts:
            keys = self.delivery.submit("table", self._gather_keys)
            self._table_wide = [
                self.delivery.submit("table", self._check_table_wide, keys, rule, columns)
                for rule, columns in gx_runner.table_wide_rules(self.table).items()
            ]

    def patients(self) -> pa.Array:
        """The distinct patient keys the table's rows refer to (after ``verdict``)."""
        return self._patients

    def verdict(self) -> gx_runner.TableValidation:
        parts = [part.result() for part in self._parts]
        parts += [rule.result() for rule in self._table_wide]
        return gx_runner.combine(self.table, parts)

    def _submit_chunk(self, kind: str = "rows") -> None:
        if not self._batches:
            return
        chunk = pa.Table.from_batches(self._batches)
        self._batches, self._batched_rows = [], 0
        while sum(not part.done() for part in self._parts) >= MAX_WAITING:
            wait([p for p in self._parts if not p.done()], return_when=FIRST_COMPLETED)
        keys: Future[_Keys] = Future()
        part = self.delivery.submit(kind, self._check_chunk, chunk, keys)
        self._waiting[id(part)] = (chunk, keys)  # until it has started: ``done`` may move it
        part.add_done_callback(lambda finished: self._waiting.pop(id(finished), None))
        self._parts.append(part)
        self._keys.append(keys)

    def _check_chunk(self, chunk: pa.Table, keys: Future[_Keys]) -> gx_runner.RuleResults:
        """The row rules on one chunk; its key columns are handed on (``keys``) as soon as
        they are prepared, so the table-wide rules need not wait for the row rules."""
        try:
            prepared = prepare(self.table, _frame(self.table, chunk))
            patients = None
            if self.table != "patients" and "patient_id" in prepared:
                patients = _distinct(_arrow(prepared["patient_id"]))
            keys.set_result(
                _Keys(_compact(prepared.loc[:, self._key_columns], self._key_only), patients)
            )
        except BaseException as exc:
            keys.set_exception(exc)
            raise
        return gx_runner.check(self.table, prepared, "rows", now=self.delivery.now)

    def _gather_keys(self) -> pd.DataFrame:
        """Every chunk's key columns as one frame. Each chunk was submitted before this
        task, to the row-rules thread (which never waits) or ahead of it on these
        threads, so waiting for them cannot deadlock."""
        chunks = [keys.result() for keys in self._keys]
        self._keys = []
        refs = [c.patients for c in chunks if c.patients is not None]
        if refs:
            self._patients = pc.unique(pa.chunked_array(refs, pa.string()))
        return _concat([c.frame for c in chunks])

    def _check_table_wide(
        self, keys: Future[pd.DataFrame], rule: str, columns: list[str]
    ) -> gx_runner.RuleResults:
        """One table-wide rule on its own columns (GX copies and filters whatever frame it
        is given); the failing rows' values are looked up in all of them."""
        every = keys.result()
        return gx_runner.check(
            self.table,
            every.loc[:, columns],
            "table",
            only=rule,
            values=every,
            now=self.delivery.now,
        )


@dataclass(frozen=True)
class _Keys:
    """What one chunk keeps for the table-wide rules: its key columns, and the distinct
    patients it refers to."""

    frame: pd.DataFrame
    patients: pa.Array | None


def _frame(table: str, chunk: pa.Table) -> pd.DataFrame:
    """A staging chunk as the frame GX checks: source_row and the landing columns, the
    pseudonym standing in for the raw patient id (the suites speak the landing contract)."""
    out = {SOURCE_ROW: chunk[SOURCE_ROW].to_numpy()}
    for column in LANDING_REQUIRED[table]:
        if column == "patient_id":
            # 64 characters a row, a hundred thousand distinct values in 10 M rows: as a
            # dictionary it is cheap to copy, and its values are the patients referred to.
            values = pc.dictionary_encode(chunk[PATIENT_KEY]).unify_dictionaries()
        else:
            values = chunk[column]
        # GX takes the failing rows of each rule: a take of a chunked column copies it.
        out[column] = pd.arrays.ArrowExtensionArray(values.combine_chunks())
    return pd.DataFrame(out)


def _arrow(column: pd.Series) -> pa.ChunkedArray:
    """An Arrow-backed column's values, without a copy (the public route copies)."""
    return column.array._pa_array  # noqa: SLF001


def _distinct(values: pa.ChunkedArray) -> pa.Array:
    """The distinct non-null values of a text column (a dictionary's own values)."""
    if pa.types.is_dictionary(values.type):
        return pc.unique(pa.chunked_array([c.dictionary for c in values.chunks], pa.string()))
    return pc.unique(values).drop_null()


def _is_text(column: pd.Series) -> bool:
    dtype = column.dtype
    return isinstance(dtype, pd.ArrowDtype) and pa.types.is_string(dtype.pyarrow_dtype)


def _compact(keys: pd.DataFrame, key_only: set[str]) -> pd.DataFrame:
    """One chunk's key columns, as cheap to keep and to copy as they can be.

    A text column that is only part of a compound key becomes an Arrow dictionary: a
    pseudonym is 64 characters on each of 10 M rows (640 MB), one int32 per row plus the
    distinct patients as a dictionary. The rest (row numbers, instants) becomes Arrow too:
    the table-wide rules only compare them, and GX's filtering of missing keys copies
    numpy columns whole (0.3 s at 10 M rows) but Arrow ones not at all.
    """
    out = {}
    for name, column in keys.items():
        if name in key_only and _is_text(column):
            column = pd.Series(pd.arrays.ArrowExtensionArray(_arrow(column).dictionary_encode()))
        elif not isinstance(column.dtype, pd.ArrowDtype):  # source_row, instants
            column = pd.Series(pd.arrays.ArrowExtensionArray(pa.array(column)))
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
            chunks = [c for p in parts for c in _arrow(p).chunks]
            values = pa.chunked_array(chunks)
            if pa.types.is_dictionary(values.type):
                out[name] = pd.Series(values.unify_dictionaries().to_pandas())
            else:
                out[name] = pd.Series(pd.arrays.ArrowExtensionArray(values))
        else:
            out[name] = pd.concat(parts, ignore_index=True)
    return pd.DataFrame(out)
