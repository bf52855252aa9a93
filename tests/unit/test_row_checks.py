"""Ingest's row checks (pipeline.row_checks): streamed in chunks, the same verdict as one GX run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import gx_expectations, gx_runner
from pipeline.row_checks import DeliveryChecks
from pipeline.schema import LANDING_REQUIRED, PATIENT_KEY, SOURCE_ROW
from tests.unit.test_gx_runner import BAD_PAIN, NOW, pain, staging


def staged_batches(table: str, frame: pd.DataFrame, rows_per_batch: int) -> list[pa.RecordBatch]:
    """The frame as ingest's staging batches: source_row, the pseudonym, text columns."""
    columns = {SOURCE_ROW: pa.array(frame[SOURCE_ROW], pa.int64())}
    for column in LANDING_REQUIRED[table]:
        name = PATIENT_KEY if column == "patient_id" else column
        columns[name] = pa.array(frame[column], pa.string())
    return pa.table(columns).to_batches(max_chunksize=rows_per_batch)


def streamed(table: str, frame: pd.DataFrame, chunk_rows: int, rows_per_batch: int = 2):
    checks = DeliveryChecks(now=NOW, chunk_rows=chunk_rows)
    try:
        table_checks = checks.table(table)
        for batch in staged_batches(table, frame, rows_per_batch):
            table_checks.add(batch)
        table_checks.done()
        return checks.results()[table]
    finally:
        checks.close()


EVENTS = [
    {"treatment_id": "t1", "patient_id": "p1", "recorded_at": "2024-01-01T10:00:00", "event": "nausea", "severity": "mild"},
    {"treatment_id": "t1", "patient_id": "p1", "recorded_at": "2024-01-01T10:00:00Z", "event": "nausea", "severity": "mild"},
    {"treatment_id": "t1", "patient_id": "p1", "recorded_at": "2024-01-01T10:00:00", "event": "dizziness", "severity": "fatal"},
    {"treatment_id": "t2", "patient_id": "p2", "recorded_at": "2024-01-01T09:00:00", "event": "nausea", "severity": None},
    {"treatment_id": "t2", "patient_id": None, "recorded_at": "2024-13-01", "event": "nausea", "severity": "mild"},
    {"treatment_id": "t2", "patient_id": "p2", "recorded_at": "2024-01-01T09:00:00+00:00", "event": "nausea", "severity": "severe"},
]  # fmt: skip


@pytest.mark.parametrize("chunk_rows", [1, 3, 1000])
@pytest.mark.parametrize(
    ("table", "rows"), [("pain_assessments", BAD_PAIN), ("adverse_events", EVENTS)]
)
def test_chunked_checks_give_the_one_shot_verdict(table, rows, chunk_rows):
    """Row rules chunk by chunk, uniqueness once over every chunk's keys = one GX run."""
    frame = staging(rows)
    whole = gx_runner.validate(table, frame, now=NOW)
    assert len(whole.failures)  # the frames are meant to fail rules of both parts
    found = streamed(table, frame, chunk_rows)
    pd.testing.assert_frame_equal(found.failures, whole.failures)
    pd.testing.assert_frame_equal(found.summary, whole.summary)
    assert found.success is whole.success is False


def test_duplicates_across_chunks_are_found():
    """The same assessment id and (patient, instant) in the first and the last chunk."""
    rows = [
        pain(f"a{i}", f"p{i % 7}", f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:00:00", "3")
        for i in range(40)
    ]
    rows[39] = pain("a0", "p0", "2024-01-01T00:00:00Z", "4")  # row 40 repeats row 1
    found = streamed("pain_assessments", staging(rows), chunk_rows=10, rows_per_batch=4)
    pairs = set(zip(found.failures.source_row, found.failures.rule_id, strict=True))
    assert pairs == {
        (1, "pain_assessments.assessment_id.unique"),
        (40, "pain_assessments.assessment_id.unique"),
        (1, "pain_assessments.patient_id_assessed_at.unique"),
        (40, "pain_assessments.patient_id_assessed_at.unique"),
    }


def test_an_empty_table_has_no_rules_run():
    found = streamed(
        "pain_assessments", staging([pain("a1", "p1", "2024-01-01", "1")]).iloc[:0], 10
    )
    assert found.failures.empty and found.summary.empty and found.success


def test_a_check_that_fails_is_raised_by_results(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("GX rule x crashed: boom")

    monkeypatch.setattr(gx_runner, "check", broken)
    with pytest.raises(RuntimeError, match="boom"):
        streamed("pain_assessments", staging(BAD_PAIN), chunk_rows=3)


def test_gx_does_not_fingerprint_the_frames_it_checks():
    """GX md5s every frame under 1 GB to label its batch (1 s per million rows); relief
    switches that off when it opens the context. Fails if a GX upgrade moves the switch."""
    from great_expectations.core.batch_spec import RuntimeDataBatchSpec
    from great_expectations.execution_engine import PandasExecutionEngine

    gx_runner.suite_rules("pain_assessments")  # opens the context
    frame = pd.DataFrame({"a": np.arange(1000)})
    _, markers = PandasExecutionEngine().get_batch_data_and_markers(
        RuntimeDataBatchSpec(batch_data=frame)
    )
    assert "pandas_data_fingerprint" not in markers


texts = st.lists(st.sampled_from(["a", "b", "c", "aa", "é", ""]), min_size=0, max_size=30)


@settings(max_examples=150, deadline=None)
@given(values=texts, ordered=st.booleans())
def test_vectorised_uniqueness_flags_what_pandas_flags(values, ordered):
    if ordered:
        values = sorted(values)
    column = pd.Series(pd.array(values, dtype=pd.ArrowDtype(pa.string())))
    expected = column.duplicated(keep=False).to_numpy()
    assert (gx_expectations.duplicated(column) == expected).all()
    as_category = column.astype(str).astype("category")
    assert (gx_expectations.duplicated(as_category) == expected).all()


@settings(max_examples=150, deadline=None)
@given(
    keys=st.lists(
        st.tuples(
            st.sampled_from(["p1", "p2", "p3"]), st.integers(0, 3), st.sampled_from(["x", "y"])
        ),
        max_size=30,
    )
)
def test_vectorised_compound_uniqueness_flags_what_pandas_flags(keys):
    frame = pd.DataFrame(keys, columns=["patient", "hour", "event"])
    expected = frame.duplicated(keep=False).to_numpy()
    typed = pd.DataFrame(
        {
            "patient": frame.patient.astype("category"),
            "at": pd.to_datetime("2024-01-01", utc=True) + pd.to_timedelta(frame.hour, unit="h"),
            "event": pd.Series(pd.array(frame.event, dtype=pd.ArrowDtype(pa.string()))),
        }
    )
    assert (gx_expectations.duplicated_rows(typed) == expected).all()


def test_ingest_allocates_arrow_memory_from_jemalloc(monkeypatch):
    """mimalloc (the wheel's default) made every checked chunk page-fault its arrays in
    again; ARROW_DEFAULT_MEMORY_POOL, when set, is left to decide."""
    from pipeline.arrow_pool import use_jemalloc

    before = pa.default_memory_pool()
    try:
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
        pa.set_memory_pool(pa.system_memory_pool())
        use_jemalloc()
        assert pa.default_memory_pool().backend_name == "system"
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL")
        use_jemalloc()
        assert pa.default_memory_pool().backend_name == "jemalloc"
    finally:
        pa.set_memory_pool(before)
