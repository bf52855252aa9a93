"""The vectorised binary COPY encoder against a row-by-row reference written from the spec.

PostgreSQL manual, COPY, "Binary Format": per row an int16 field count, per field an
int32 length (-1 = NULL) and the value's bytes (text: UTF-8; intN: big-endian).
"""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa
import pytest

from pipeline import copy_binary
from pipeline.copy_binary import CopyEncodeError, encode_batches, encode_rows

INT_FORMAT = {"int2": ">h", "int4": ">i", "int8": ">q"}


def reference(batch: pa.RecordBatch, kinds: list[str]) -> bytes:
    """One row at a time, straight from the format description."""
    out = bytearray()
    for row in batch.to_pylist():
        out += struct.pack(">h", batch.num_columns)
        for value, kind in zip(row.values(), kinds, strict=True):
            if value is None:
                out += struct.pack(">i", -1)
            elif kind == "text":
                data = value.encode("utf-8") if isinstance(value, str) else value
                out += struct.pack(">i", len(data)) + data
            else:
                data = struct.pack(INT_FORMAT[kind], value)
                out += struct.pack(">i", len(data)) + data
    return bytes(out)


def encoded(batch: pa.RecordBatch, kinds: list[str]) -> bytes:
    return b"".join(bytes(block) for block in encode_batches(batch, kinds))


def constant(value: str, n: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), pa.array([value]))


MIXED = pa.record_batch(
    {
        "delivery_id": constant("d0123456789abcde", 6),
        "source_row": pa.array([1, 2, 3, 4, 5, 2**31 - 1], pa.int64()),
        "key": pa.array(["a" * 64, "b" * 64, "c" * 64, "d" * 64, "e" * 64, "f" * 64]),
        "text": pa.array(["x", None, "", "café ☕ 漢字", "é" * 40_000, 'tab\tnew\nline,"q"']),
        "small": pa.array([-(2**15), 0, None, 7, 2**15 - 1, 1], pa.int16()),
        "big": pa.array([-(2**63), None, 0, 1, 2**63 - 1, -1], pa.int64()),
        "last": pa.array([None, None, None, None, None, None], pa.string()),
    }
)
MIXED_KINDS = ["text", "int4", "text", "text", "int2", "int8", "text"]


def test_mixed_batch_equals_the_row_by_row_reference():
    assert encoded(MIXED, MIXED_KINDS) == reference(MIXED, MIXED_KINDS)


def test_all_fixed_width_rows_need_no_join():
    batch = pa.record_batch(
        {"id": pa.array(["A01", "A02", "A03"]), "n": pa.array([1, 2, 3], pa.int32())}
    )
    assert encoded(batch, ["text", "int4"]) == reference(batch, ["text", "int4"])


@pytest.mark.parametrize("start,length", [(0, 3), (1, 4), (2, 1), (5, 1), (3, 0)])
def test_slices_encode_only_their_rows(start, length):
    part = MIXED.slice(start, length)
    assert encoded(part, MIXED_KINDS) == reference(part, MIXED_KINDS)


def test_large_string_binary_and_dictionary_text():
    batch = pa.record_batch(
        {
            "large": pa.array(["ü", None, "long" * 1000], pa.large_string()),
            "bytes": pa.array([b"\x01\x02", b"", None], pa.binary()),
            "dict": pa.array(["x", "yy", None]).dictionary_encode(),
        }
    )
    kinds = ["text"] * 3
    assert encoded(batch, kinds) == reference(batch, kinds)


def test_big_batches_are_encoded_in_slices_with_the_same_bytes(monkeypatch):
    monkeypatch.setattr(copy_binary, "MAX_ENCODED_BYTES", 1_000)
    blocks = list(encode_batches(MIXED, MIXED_KINDS))
    assert len(blocks) > 1
    assert b"".join(bytes(b) for b in blocks) == reference(MIXED, MIXED_KINDS)


def test_integer_out_of_range_is_an_error_naming_the_column():
    batch = pa.record_batch({"source_row": pa.array([1, 2**31], pa.int64())})
    with pytest.raises(CopyEncodeError, match="source_row.*int4"):
        encode_rows(batch, ["int4"])


def test_wrong_arrow_type_for_text_is_an_error_naming_the_column():
    batch = pa.record_batch({"when": pa.array([1.5])})
    with pytest.raises(CopyEncodeError, match="when"):
        encode_rows(batch, ["text"])


def test_whole_stream_has_signature_and_trailer():
    stream = b"".join(bytes(b) for b in copy_binary.stream(iter([MIXED]), MIXED_KINDS))
    assert stream.startswith(b"PGCOPY\n\xff\r\n\x00" + bytes(8))
    assert stream.endswith(b"\xff\xff")
    assert stream[19:-2] == reference(MIXED, MIXED_KINDS)
